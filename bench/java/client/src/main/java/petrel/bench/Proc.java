package petrel.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** CPU time and resident memory of processes, read from /proc (Linux only). */
final class Proc {
    private Proc() {}

    /** utime + stime of each pid, summed, in clock ticks. "self" names this JVM. */
    static long cpuTicks(List<String> pids) {
        long sum = 0;
        for (String pid : pids) {
            sum += cpuTicks(pid);
        }
        return sum;
    }

    static long cpuTicks(String pid) {
        try {
            String stat = Files.readString(Path.of("/proc", pid, "stat"));
            // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).trim().split(" ");
            // f[0] is field 3 (state), so utime (field 14) is f[11] and stime (15) is f[12].
            return Long.parseLong(f[11]) + Long.parseLong(f[12]);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/" + pid + "/stat", e);
        }
    }

    /** A field of /proc/PID/status in KiB (VmRSS, RssAnon, RssFile), summed over the pids. */
    static long statusKib(List<String> pids, String field) {
        long sum = 0;
        for (String pid : pids) {
            try {
                for (String line : Files.readAllLines(Path.of("/proc", pid, "status"))) {
                    if (line.startsWith(field + ":")) {
                        sum += Long.parseLong(line.substring(field.length() + 1).trim().split("\\s+")[0]);
                    }
                }
            } catch (IOException e) {
                throw new IllegalStateException("cannot read /proc/" + pid + "/status", e);
            }
        }
        return sum;
    }
}

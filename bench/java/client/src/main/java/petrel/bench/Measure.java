package petrel.bench;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * What Bench (remoting, client 4.9.8) and bench/java5's GrpcBench (gRPC, client 5.x) measure the
 * same way: the key=value options, the body they send, CPU at both ends of a window and the
 * CPU and memory fields of the RESULT line, the per-second ticker. No RocketMQ classes here:
 * bench/java5 compiles this file against the 5.x client.
 */
final class Measure {
    private Measure() {}

    /** The {@code key=value} options after the mode. */
    record Args(Map<String, String> m) {
        static Args parse(String[] argv) {
            Map<String, String> a = new HashMap<>();
            for (String s : Arrays.copyOfRange(argv, 1, argv.length)) {
                int eq = s.indexOf('=');
                if (eq < 0) {
                    throw new IllegalArgumentException("not key=value: " + s);
                }
                a.put(s.substring(0, eq), s.substring(eq + 1));
            }
            return new Args(a);
        }

        String str(String k, String def) {
            return m.getOrDefault(k, def);
        }

        long num(String k, long def) {
            return m.containsKey(k) ? Long.parseLong(m.get(k)) : def;
        }

        List<String> pids(String k) {
            String v = m.getOrDefault(k, "");
            return v.isEmpty() ? List.of() : List.of(v.split(","));
        }
    }

    /** Server and client CPU at one instant. */
    record Cpu(long nanos, long serverTicks, long clientTicks) {
        static Cpu now(List<String> serverPids) {
            return new Cpu(System.nanoTime(), Proc.cpuTicks(serverPids), Proc.cpuTicks("self"));
        }
    }

    static String cpuAndMemory(Cpu from, Cpu to, long messages, long hz, List<String> rssPids) {
        double perTick = 1e6 / hz;
        double server = (to.serverTicks - from.serverTicks) * perTick / Math.max(1, messages);
        double client = (to.clientTicks - from.clientTicks) * perTick / Math.max(1, messages);
        return String.format(
                "server_cpu_us=%.2f client_cpu_us=%.2f server_cpu_s=%.2f client_cpu_s=%.2f"
                        + " rss_anon_mib=%d rss_mib=%d",
                server,
                client,
                (to.serverTicks - from.serverTicks) / (double) hz,
                (to.clientTicks - from.clientTicks) / (double) hz,
                Proc.statusKib(rssPids, "RssAnon") / 1024,
                Proc.statusKib(rssPids, "VmRSS") / 1024);
    }

    /** A random alphanumeric body of the given size, as the official benchmark sends. */
    static byte[] body(int size) {
        Random rnd = new Random(42);
        String alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        StringBuilder sb = new StringBuilder(size);
        for (int i = 0; i < size; i++) {
            sb.append(alphabet.charAt(rnd.nextInt(alphabet.length())));
        }
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** A daemon thread running {@code each} once a second until interrupted. */
    static Thread ticker(Runnable each) {
        Thread t = new Thread(() -> {
            long next = System.nanoTime();
            while (true) {
                next += 1_000_000_000L;
                long wait = next - System.nanoTime();
                if (wait > 0 && !sleep(wait / 1_000_000)) {
                    return;
                }
                each.run();
            }
        }, "ticker");
        t.setDaemon(true);
        t.start();
        return t;
    }

    static boolean sleep(long millis) {
        try {
            Thread.sleep(millis);
            return true;
        } catch (InterruptedException e) {
            return false;
        }
    }
}

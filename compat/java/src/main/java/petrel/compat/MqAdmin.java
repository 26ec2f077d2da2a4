package petrel.compat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.rocketmq.tools.command.MQAdminStartup;

/**
 * The official {@code mqadmin} (rocketmq-tools 4.9.8) as a user runs it, plus what its
 * launcher script would provide. {@code MQAdminStartup} configures logback from
 * {@code $ROCKETMQ_HOME/conf/logback_tools.xml} before any command and fails every command
 * without it ("Could not open [null/conf/logback_tools.xml]"), so this makes a throwaway home
 * with a quiet config and sets {@code rocketmq.home.dir}; no {@code conf/tools.yml} means no
 * ACL hook, as on a broker without ACL. The arguments go to mqadmin unchanged ({@code -n addr}
 * names the name server). mqadmin prints its result and any exception itself and returns
 * normally either way; the JVM is left at once after it returns, instead of waiting seconds
 * for the client's non-daemon threads to wind down.
 */
public final class MqAdmin {
    private MqAdmin() {}

    public static void main(String[] args) throws IOException {
        // Under user.home, which the cargo harness points at a directory it removes afterwards.
        Path home = Files.createTempDirectory(Path.of(System.getProperty("user.home")), "rocketmq-home");
        Path conf = Files.createDirectories(home.resolve("conf"));
        Files.write(conf.resolve("logback_tools.xml"),
                "<configuration><root level=\"OFF\"/></configuration>\n".getBytes(StandardCharsets.UTF_8));
        // Read by MQAdminStartup's static initializer, so set before the class is touched.
        System.setProperty("rocketmq.home.dir", home.toString());
        MQAdminStartup.main(args);
        System.out.flush();
        System.err.flush();
        Runtime.getRuntime().halt(0);
    }
}

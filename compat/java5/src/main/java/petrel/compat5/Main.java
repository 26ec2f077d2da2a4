package petrel.compat5;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Map;
import java.util.TreeMap;

/**
 * Entry point of the scenario programs for the official RocketMQ 5.x Java client (gRPC):
 * {@code Main <Class.method> endpoint=HOST:PORT topic=T group=G key=value...}, where the scenario is
 * a static {@code void method(Args)} of class {@code petrel.compat5.Class}, so each family of
 * scenarios is its own file and nothing lists them. A scenario runs its clients to the end and
 * prints what it saw as {@code RESULT key=value} lines for the cargo test, which asserts them;
 * {@code PASSED} (exit 0) says it ran to its end, {@code FAILED} (exit 1) that a client call threw.
 */
public final class Main {
    public static void main(String[] argv) {
        if (argv.length < 1) {
            System.err.println("usage: Main <Class.method> endpoint=HOST:PORT topic=T group=G key=value...");
            System.exit(2);
        }
        Map<String, String> opts = new TreeMap<>();
        for (int i = 1; i < argv.length; i++) {
            int eq = argv[i].indexOf('=');
            if (eq <= 0) {
                System.err.println("not key=value: " + argv[i]);
                System.exit(2);
            }
            opts.put(argv[i].substring(0, eq), argv[i].substring(eq + 1));
        }
        Method scenario = find(argv[0]);
        if (scenario == null) {
            System.err.println("unknown scenario " + argv[0] + ": no static void method(Args) of that name in petrel.compat5");
            System.exit(2);
        }
        int code = 0;
        try {
            scenario.invoke(null, new Args(opts));
            System.out.println("PASSED " + argv[0]);
        } catch (Throwable t) {
            Throwable cause = t instanceof InvocationTargetException ? t.getCause() : t;
            System.out.println("FAILED " + argv[0] + ": " + cause);
            cause.printStackTrace(System.out);
            code = 1;
        }
        System.out.flush();
        // Client threads (schedulers, gRPC) are not daemons: leave without waiting for them.
        Runtime.getRuntime().halt(code);
    }

    private static Method find(String name) {
        int dot = name.lastIndexOf('.');
        if (dot <= 0) {
            return null;
        }
        try {
            Class<?> family = Class.forName("petrel.compat5." + name.substring(0, dot));
            Method m = family.getDeclaredMethod(name.substring(dot + 1), Args.class);
            if (!Modifier.isStatic(m.getModifiers())) {
                return null;
            }
            m.setAccessible(true);
            return m;
        } catch (ClassNotFoundException | NoSuchMethodException e) {
            return null;
        }
    }
}

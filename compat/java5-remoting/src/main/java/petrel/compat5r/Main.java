package petrel.compat5r;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Map;
import java.util.TreeMap;

/**
 * Entry point of the 5.x remoting scenarios: {@code Main <Class.method> key=value...}, where the
 * scenario is a static {@code void method(Args)} of class {@code petrel.compat5r.Class}. A
 * scenario checks what it must itself and throws on the first difference; the process exits 0
 * only if it passed. Lines starting with {@code RESULT } are facts for the cargo test that ran it.
 */
public final class Main {
    /** A scenario: one static method. */
    interface Scenario {
        void run(Args args) throws Exception;
    }

    public static void main(String[] argv) {
        if (argv.length < 1) {
            System.err.println("usage: Main <Class.method> key=value...");
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
        Scenario scenario = find(argv[0]);
        if (scenario == null) {
            System.err.println("unknown scenario " + argv[0] + ": no static void method(Args) of that name in petrel.compat5r");
            System.exit(2);
        }
        int code = 0;
        try {
            scenario.run(new Args(opts));
            System.out.println("PASSED " + argv[0]);
        } catch (Throwable t) {
            System.out.println("FAILED " + argv[0] + ": " + t);
            t.printStackTrace(System.out);
            code = 1;
        }
        System.out.flush();
        // Client threads (timers, netty) are not daemons: leave without waiting for them.
        Runtime.getRuntime().halt(code);
    }

    private static Scenario find(String name) {
        int dot = name.lastIndexOf('.');
        if (dot <= 0) {
            return null;
        }
        try {
            Class<?> family = Class.forName("petrel.compat5r." + name.substring(0, dot));
            Method m = family.getDeclaredMethod(name.substring(dot + 1), Args.class);
            if (!Modifier.isStatic(m.getModifiers())) {
                return null;
            }
            m.setAccessible(true);
            return args -> {
                try {
                    m.invoke(null, args);
                } catch (InvocationTargetException e) {
                    Throwable cause = e.getCause();
                    if (cause instanceof Error) {
                        throw (Error) cause;
                    }
                    throw cause instanceof Exception ? (Exception) cause : e;
                }
            };
        } catch (ClassNotFoundException | NoSuchMethodException e) {
            return null;
        }
    }
}

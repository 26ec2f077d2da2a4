package petrel.compat;

import java.util.Objects;

/** Assertions that say what differed. */
public final class Check {
    private Check() {}

    public static void that(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    public static void equal(Object expected, Object actual, String what) {
        if (!Objects.equals(expected, actual)) {
            throw new AssertionError(what + ": expected <" + expected + "> but was <" + actual + ">");
        }
    }

    /** Prints a fact for the cargo test. */
    public static void result(String key, Object value) {
        System.out.println("RESULT " + key + "=" + value);
    }
}

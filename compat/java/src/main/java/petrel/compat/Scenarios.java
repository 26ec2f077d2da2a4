package petrel.compat;

import java.util.Map;
import java.util.TreeMap;

/** Every scenario by the name the cargo tests use. */
final class Scenarios {
    private static final Map<String, Scenario> ALL = new TreeMap<>();

    static {
        ALL.put("tag_subscriptions", Messaging::tagSubscriptions);
    }

    private Scenarios() {}

    static Scenario find(String name) {
        return ALL.get(name);
    }

    static String names() {
        return String.join(", ", ALL.keySet());
    }
}

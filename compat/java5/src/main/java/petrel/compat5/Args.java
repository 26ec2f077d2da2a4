package petrel.compat5;

import java.util.Map;

/** The scenario's {@code key=value} options. */
public final class Args {
    private final Map<String, String> opts;

    Args(Map<String, String> opts) {
        this.opts = opts;
    }

    public String get(String key) {
        String v = opts.get(key);
        if (v == null) {
            throw new IllegalArgumentException("missing option " + key + "=...");
        }
        return v;
    }

    public int getInt(String key, int otherwise) {
        String v = opts.get(key);
        return v == null ? otherwise : Integer.parseInt(v);
    }

    public String topic() {
        return get("topic");
    }

    public String group() {
        return get("group");
    }
}

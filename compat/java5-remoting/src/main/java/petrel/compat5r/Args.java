package petrel.compat5r;

import java.util.Map;

/** The scenario's {@code key=value} options. */
final class Args {
    private final Map<String, String> opts;

    Args(Map<String, String> opts) {
        this.opts = opts;
    }

    String get(String key) {
        String v = opts.get(key);
        if (v == null) {
            throw new IllegalArgumentException("missing option " + key + "=...");
        }
        return v;
    }

    int getInt(String key, int otherwise) {
        String v = opts.get(key);
        return v == null ? otherwise : Integer.parseInt(v);
    }

    String namesrv() {
        return get("namesrv");
    }
}

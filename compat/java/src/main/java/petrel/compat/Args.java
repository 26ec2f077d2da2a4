package petrel.compat;

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

    public String get(String key, String otherwise) {
        return opts.getOrDefault(key, otherwise);
    }

    public int getInt(String key, int otherwise) {
        String v = opts.get(key);
        return v == null ? otherwise : Integer.parseInt(v);
    }

    public String namesrv() {
        return get("namesrv");
    }

    /** A name unique to this run: the test passes {@code run=...}; scenarios derive topics and groups from it. */
    public String name(String what) {
        return what + "_" + get("run");
    }
}

package petrel.bench;

/**
 * Latencies in microseconds, exact below 2,048 µs and within 0.1 % above (10 bits of mantissa
 * per power of two). One per sender thread, merged after the threads have stopped, so no
 * synchronisation.
 */
final class Histogram {
    private static final int LINEAR = 2048; // 2^11
    private static final int SUB = 1024; // 2^10 buckets per power of two above LINEAR
    private final long[] counts = new long[LINEAR + (63 - 11) * SUB];
    private long total;
    private long sumMicros;
    private long maxMicros;

    void record(long micros) {
        if (micros < 0) {
            micros = 0;
        }
        counts[index(micros)]++;
        total++;
        sumMicros += micros;
        if (micros > maxMicros) {
            maxMicros = micros;
        }
    }

    private static int index(long v) {
        if (v < LINEAR) {
            return (int) v;
        }
        int e = 63 - Long.numberOfLeadingZeros(v); // >= 11
        int mantissa = (int) ((v >>> (e - 10)) & (SUB - 1));
        return LINEAR + (e - 11) * SUB + mantissa;
    }

    /** The lowest value that falls into bucket i. */
    private static long lowest(int i) {
        if (i < LINEAR) {
            return i;
        }
        int e = (i - LINEAR) / SUB + 11;
        long mantissa = (i - LINEAR) % SUB;
        return (1L << e) | (mantissa << (e - 10));
    }

    void add(Histogram o) {
        for (int i = 0; i < counts.length; i++) {
            counts[i] += o.counts[i];
        }
        total += o.total;
        sumMicros += o.sumMicros;
        maxMicros = Math.max(maxMicros, o.maxMicros);
    }

    long total() {
        return total;
    }

    double meanMicros() {
        return total == 0 ? 0 : (double) sumMicros / total;
    }

    long maxMicros() {
        return maxMicros;
    }

    /** The value at quantile q (0..1): the lowest bucket value with at least q of the samples. */
    long quantileMicros(double q) {
        if (total == 0) {
            return 0;
        }
        long rank = (long) Math.ceil(q * total);
        long seen = 0;
        for (int i = 0; i < counts.length; i++) {
            seen += counts[i];
            if (seen >= rank) {
                return lowest(i);
            }
        }
        return maxMicros;
    }
}

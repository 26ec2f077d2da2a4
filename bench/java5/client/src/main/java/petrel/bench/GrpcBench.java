package petrel.bench;

import static petrel.bench.Measure.body;
import static petrel.bench.Measure.cpuAndMemory;
import static petrel.bench.Measure.ticker;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.FilterExpressionType;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.Message;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;
import petrel.bench.Measure.Args;
import petrel.bench.Measure.Cpu;

/**
 * The gRPC counterpart of bench/java's Bench, on the official RocketMQ 5.x Java client
 * (rocketmq-client-java, gRPC v2), measured the same way ({@link Measure}): a window after a
 * warm-up, RT with nanoTime into a {@link Histogram} per thread, CPU of the servers and of this
 * JVM from /proc ({@link Proc}) at both ends of the window.
 *
 * <ul>
 *   <li>{@code produce}: N threads share one Producer, each sending the same random
 *       alphanumeric body (no tag, no keys, as Bench sends) synchronously in a loop; TPS,
 *       average / p50 / p99 / max RT. With {@code until=N}, a fill instead: the senders stop
 *       once N messages are stored, and nothing is measured.
 *   <li>{@code receive}: one SimpleConsumer (a new group, tag "*") shared by N threads, each
 *       receiving up to {@code batch} messages at a time and acking each of them
 *       ({@code ackAsync} per message, the batch's acks awaited before the next receive), until
 *       {@code backlog} messages have been acked or nothing came for {@code idle} seconds;
 *       the rate is messages acked over the time from the first receive to the last ack.
 * </ul>
 *
 * Both end with one line "RESULT key=value ..." with Bench's keys, for bench/grpc.sh.
 * Plaintext (h2c), no credentials.
 */
public final class GrpcBench {
    private static final ClientServiceProvider PROVIDER = ClientServiceProvider.loadService();

    private GrpcBench() {}

    public static void main(String[] argv) {
        if (argv.length == 0) {
            System.err.println("usage: GrpcBench produce|receive endpoint=HOST:PORT topic=T key=value...");
            System.exit(2);
        }
        int code = 0;
        try {
            Args a = Args.parse(argv);
            switch (argv[0]) {
                case "produce" -> produce(a);
                case "receive" -> receive(a);
                default -> throw new IllegalArgumentException("unknown mode " + argv[0]);
            }
        } catch (Throwable t) {
            t.printStackTrace();
            code = 1;
        }
        System.out.flush();
        // The client's scheduler and gRPC threads are not daemons: leave without waiting for them.
        Runtime.getRuntime().halt(code);
    }

    private static ClientConfiguration config(Args a) {
        return ClientConfiguration.newBuilder()
            .setEndpoints(a.str("endpoint", "127.0.0.1:8081"))
            .enableSsl(false)
            .setRequestTimeout(Duration.ofSeconds(10))
            .build();
    }

    // ---------------------------------------------------------------- produce

    static void produce(Args a) throws Exception {
        String topic = a.str("topic", "BenchCompare");
        int threads = (int) a.num("threads", 1);
        int size = (int) a.num("size", 1024);
        long warmup = a.num("warmup", 5);
        long duration = a.num("duration", 30);
        long until = a.num("until", 0);
        long hz = a.num("hz", 100);
        List<String> cpuPids = a.pids("cpuPids");
        List<String> rssPids = a.pids("rssPids");

        byte[] body = body(size);

        // The topic named up front: start-up fetches its route, as a real producer's does.
        Producer producer = PROVIDER.newProducerBuilder().setClientConfiguration(config(a)).setTopics(topic).build();

        LongAdder ok = new LongAdder();
        LongAdder failed = new LongAdder();
        LongAdder secondCount = new LongAdder();
        LongAdder secondRtMicros = new LongAdder();
        AtomicLong secondMaxMicros = new AtomicLong();
        AtomicLong firstError = new AtomicLong();
        Histogram[] hists = new Histogram[threads];
        Thread[] senders = new Thread[threads];
        final class Flags {
            volatile boolean measuring;
            volatile boolean stop;
        }
        Flags f = new Flags();
        for (int t = 0; t < threads; t++) {
            Histogram h = new Histogram();
            hists[t] = h;
            senders[t] = new Thread(() -> {
                while (!f.stop) {
                    Message msg = PROVIDER.newMessageBuilder().setTopic(topic).setBody(body).build();
                    long begin = System.nanoTime();
                    try {
                        producer.send(msg);
                        long micros = (System.nanoTime() - begin) / 1000;
                        ok.increment();
                        secondCount.increment();
                        secondRtMicros.add(micros);
                        long prev = secondMaxMicros.get();
                        while (micros > prev && !secondMaxMicros.compareAndSet(prev, micros)) {
                            prev = secondMaxMicros.get();
                        }
                        if (f.measuring) {
                            h.record(micros);
                        }
                        if (until > 0 && ok.sum() >= until) {
                            f.stop = true;
                        }
                    } catch (Exception e) {
                        failed.increment();
                        if (firstError.compareAndSet(0, 1)) {
                            System.out.println("send failed: " + e);
                        }
                    }
                }
            }, "sender-" + t);
        }
        Thread ticker = ticker(() -> {
            long n = secondCount.sumThenReset();
            long rt = secondRtMicros.sumThenReset();
            long max = secondMaxMicros.getAndSet(0);
            System.out.printf("Send TPS: %d Max RT(ms): %.3f Average RT(ms): %.3f Send Failed: %d total: %d%n",
                n, max / 1000.0, n == 0 ? 0 : rt / 1000.0 / n, failed.sum(), ok.sum());
        });
        for (Thread s : senders) {
            s.start();
        }
        if (until > 0) {
            for (Thread s : senders) {
                s.join();
            }
            ticker.interrupt();
            System.out.printf("RESULT mode=grpc_fill sent=%d failed=%d%n", ok.sum(), failed.sum());
            producer.close();
            return;
        }
        Thread.sleep(warmup * 1000);
        long okFrom = ok.sum();
        long failedFrom = failed.sum();
        Cpu from = Cpu.now(cpuPids);
        f.measuring = true;
        Thread.sleep(duration * 1000);
        f.measuring = false;
        Cpu to = Cpu.now(cpuPids);
        long sent = ok.sum() - okFrom;
        String mem = cpuAndMemory(from, to, sent, hz, rssPids);
        f.stop = true;
        for (Thread s : senders) {
            s.join();
        }
        ticker.interrupt();
        Histogram all = new Histogram();
        for (Histogram h : hists) {
            all.add(h);
        }
        double secs = (to.nanos() - from.nanos()) / 1e9;
        System.out.printf(
            "RESULT mode=grpc_produce threads=%d size=%d window_s=%.2f sent=%d tps=%.0f avg_ms=%.3f"
                + " p50_ms=%.3f p99_ms=%.3f max_ms=%.3f failed=%d %s%n",
            threads, size, secs, sent, sent / secs, all.meanMicros() / 1000,
            all.quantileMicros(0.50) / 1000.0, all.quantileMicros(0.99) / 1000.0,
            all.maxMicros() / 1000.0, failed.sum() - failedFrom, mem);
        producer.close();
    }

    // ---------------------------------------------------------------- receive

    static void receive(Args a) throws Exception {
        String topic = a.str("topic", "BenchCompare");
        String group = a.str("group", "bench_grpc_drain");
        int threads = (int) a.num("threads", 20);
        int batch = (int) a.num("batch", 32);
        long backlog = a.num("backlog", 0);
        long idle = a.num("idle", 10);
        long timeout = a.num("timeout", 900);
        Duration invisible = Duration.ofSeconds(a.num("invisible", 60));
        long hz = a.num("hz", 100);
        List<String> cpuPids = a.pids("cpuPids");
        List<String> rssPids = a.pids("rssPids");
        if (backlog <= 0) {
            throw new IllegalArgumentException("backlog=N (messages to drain) is required");
        }

        SimpleConsumer consumer = PROVIDER.newSimpleConsumerBuilder()
            .setClientConfiguration(config(a))
            .setConsumerGroup(group)
            // The long poll of a receive that finds nothing: only at the end of the backlog.
            .setAwaitDuration(Duration.ofSeconds(5))
            .setSubscriptionExpressions(Map.of(topic, new FilterExpression("*", FilterExpressionType.TAG)))
            .build();

        LongAdder acked = new LongAdder();
        LongAdder second = new LongAdder();
        LongAdder receives = new LongAdder();
        LongAdder failed = new LongAdder();
        LongAdder redelivered = new LongAdder();
        AtomicLong firstError = new AtomicLong();
        AtomicLong lastAckNanos = new AtomicLong();
        final class Flags {
            volatile boolean stop;
        }
        Flags f = new Flags();
        Thread[] workers = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            workers[t] = new Thread(() -> {
                while (!f.stop) {
                    try {
                        List<MessageView> got = consumer.receive(batch, invisible);
                        receives.increment();
                        List<CompletableFuture<Void>> acks = new ArrayList<>(got.size());
                        for (MessageView m : got) {
                            if (m.getDeliveryAttempt() > 1) {
                                redelivered.increment();
                            }
                            acks.add(consumer.ackAsync(m));
                        }
                        for (CompletableFuture<Void> ack : acks) {
                            try {
                                ack.join();
                                acked.increment();
                                second.increment();
                            } catch (Exception e) {
                                failed.increment();
                                if (firstError.compareAndSet(0, 1)) {
                                    System.out.println("ack failed: " + e);
                                }
                            }
                        }
                        if (!got.isEmpty()) {
                            lastAckNanos.accumulateAndGet(System.nanoTime(), Math::max);
                        }
                        if (acked.sum() >= backlog) {
                            f.stop = true;
                        }
                    } catch (Exception e) {
                        failed.increment();
                        if (firstError.compareAndSet(0, 1)) {
                            System.out.println("receive failed: " + e);
                        }
                    }
                }
            }, "receiver-" + t);
        }
        Thread ticker = ticker(() -> System.out.printf("Consume TPS: %d total: %d%n", second.sumThenReset(), acked.sum()));
        Cpu from = Cpu.now(cpuPids);
        for (Thread w : workers) {
            w.start();
        }
        long deadline = from.nanos() + timeout * 1_000_000_000L;
        boolean drained = false;
        while (true) {
            Thread.sleep(100);
            long now = System.nanoTime();
            if (acked.sum() >= backlog) {
                drained = true;
                break;
            }
            long last = lastAckNanos.get();
            boolean quiet = now - (last == 0 ? from.nanos() : last) > idle * 1_000_000_000L;
            if (now > deadline || (last != 0 && quiet) || (last == 0 && now - from.nanos() > 60_000_000_000L)) {
                break;
            }
        }
        f.stop = true;
        Cpu to = Cpu.now(cpuPids);
        long got = acked.sum();
        String mem = cpuAndMemory(from, to, got, hz, rssPids);
        ticker.interrupt();
        long end = drained ? lastAckNanos.get() : to.nanos();
        double secs = (end - from.nanos()) / 1e9;
        System.out.printf(
            "RESULT mode=grpc_receive backlog=%d received=%d drained=%b window_s=%.2f tps=%.0f receives=%d"
                + " per_receive=%.1f redelivered=%d failed=%d %s%n",
            backlog, got, drained, secs, Math.min(got, backlog) / secs, receives.sum(),
            got / (double) Math.max(1, receives.sum()), redelivered.sum(), failed.sum(), mem);
        consumer.close();
    }
}

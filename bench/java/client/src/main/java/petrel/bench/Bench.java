package petrel.bench;

import static petrel.bench.Measure.body;
import static petrel.bench.Measure.cpuAndMemory;
import static petrel.bench.Measure.sleep;
import static petrel.bench.Measure.ticker;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.client.producer.TransactionListener;
import org.apache.rocketmq.client.producer.TransactionMQProducer;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.exception.RemotingException;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.apache.rocketmq.remoting.protocol.SerializeType;
import petrel.bench.Measure.Args;
import petrel.bench.Measure.Cpu;

/**
 * Benchmark programs in the manner of RocketMQ's own example/benchmark Producer and Consumer
 * (which Maven Central does not serve here), on the official 4.9.8 client:
 *
 * <ul>
 *   <li>{@code produce}: N threads share one DefaultMQProducer, each sending a fixed body
 *       synchronously in a loop; binary (ROCKETMQ) headers; TPS, average and max RT printed
 *       each second. Unlike the original, RT is taken with nanoTime into a histogram, so the
 *       result also has p50/p99, and the result covers only the window after a warm-up.
 *       With {@code transactional=true}, as the official TransactionProducer: one
 *       TransactionMQProducer whose local transaction commits at once, each send a half
 *       message, then END_TRANSACTION (commit).
 *   <li>{@code consume}: one DefaultMQPushConsumer with 20 consume threads and the default
 *       batch of one message per listener call, draining the topic's backlog from the first
 *       offset; prints msg/s each second and the drain rate at the end.
 *   <li>{@code loopback}: the raw loopback TCP limits, one stream and one ping-pong.
 * </ul>
 *
 * Every mode ends with one line "RESULT key=value ..." for bench/compare.sh. CPU time of the
 * processes named by {@code cpuPids} and of this JVM is read from /proc at both ends of the
 * measured window; resident memory of {@code rssPids} at its end.
 */
public final class Bench {
    private Bench() {}

    public static void main(String[] argv) throws Exception {
        // As the official benchmark does: binary headers, set before the client classes load.
        System.setProperty(RemotingCommand.SERIALIZE_TYPE_PROPERTY, SerializeType.ROCKETMQ.name());
        if (argv.length == 0) {
            throw new IllegalArgumentException("usage: Bench produce|consume|loopback key=value...");
        }
        Args args = Args.parse(argv);
        // The client's own threads are not daemons: without an explicit exit a failed run would
        // hang instead of failing.
        try {
            switch (argv[0]) {
                case "produce" -> produce(args);
                case "consume" -> consume(args);
                case "loopback" -> loopback(args);
                default -> throw new IllegalArgumentException("unknown mode " + argv[0]);
            }
        } catch (Throwable t) {
            t.printStackTrace();
            System.exit(1);
        }
        System.exit(0);
    }

    private static DefaultMQProducer producer(String namesrv, String group) throws Exception {
        return producer(namesrv, group, false);
    }

    private static DefaultMQProducer producer(String namesrv, String group, boolean transactional)
            throws Exception {
        DefaultMQProducer p;
        if (transactional) {
            TransactionMQProducer t = new TransactionMQProducer(group);
            t.setTransactionListener(new TransactionListener() {
                @Override
                public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                    return LocalTransactionState.COMMIT_MESSAGE;
                }

                @Override
                public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                    return LocalTransactionState.COMMIT_MESSAGE;
                }
            });
            p = t;
        } else {
            p = new DefaultMQProducer(group);
        }
        p.setNamesrvAddr(namesrv);
        p.setInstanceName(group + "_" + System.nanoTime());
        // Petrel has no VIP port (listen port - 2); the official broker has one, but a plain
        // channel to both keeps the comparison one of brokers, not of ports.
        p.setVipChannelEnabled(false);
        p.setCompressMsgBodyOverHowmuch(Integer.MAX_VALUE);
        p.start();
        return p;
    }

    // ---------------------------------------------------------------- produce

    static void produce(Args a) throws Exception {
        String namesrv = a.str("namesrv", "127.0.0.1:9876");
        String topic = a.str("topic", "BenchmarkTest");
        int threads = (int) a.num("threads", 1);
        int size = (int) a.num("size", 1024);
        long warmup = a.num("warmup", 5);
        long duration = a.num("duration", 30);
        long until = a.num("until", 0);
        int queues = (int) a.num("queues", 0);
        long hz = a.num("hz", 100);
        boolean transactional = Boolean.parseBoolean(a.str("transactional", "false"));
        // Messages per send call: above 1, producer.send(Collection) (SEND_BATCH_MESSAGE, one
        // queue per batch); TPS counts messages, RT is per call.
        int batch = (int) a.num("batch", 1);
        if (batch > 1 && transactional) {
            throw new IllegalArgumentException("batch sends are not transactional");
        }
        List<String> cpuPids = a.pids("cpuPids");
        List<String> rssPids = a.pids("rssPids");

        byte[] body = body(size);

        DefaultMQProducer producer = producer(
                namesrv, transactional ? "benchmark_tx_producer" : "benchmark_producer", transactional);
        if (queues > 0) {
            // Same queue count on both brokers instead of each one's auto-create default. A broker
            // that has just started may not have registered TBW102 with its name server yet.
            for (int attempt = 1; ; attempt++) {
                try {
                    producer.createTopic("TBW102", topic, queues);
                    break;
                } catch (MQClientException e) {
                    if (attempt == 30) {
                        throw e;
                    }
                    System.out.println("create topic failed, retrying: " + e.getErrorMessage());
                    Thread.sleep(1000);
                }
            }
            Thread.sleep(1000);
        }

        LongAdder ok = new LongAdder();
        LongAdder notOk = new LongAdder();
        LongAdder failed = new LongAdder();
        LongAdder secondCount = new LongAdder();
        LongAdder secondRtMicros = new LongAdder();
        AtomicLong secondMaxMicros = new AtomicLong();
        AtomicLong firstError = new AtomicLong();
        Histogram[] hists = new Histogram[threads];
        Thread[] senders = new Thread[threads];
        // Written by main and the sender that reaches `until`, read by every sender.
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
                    Message msg = new Message(topic, body);
                    List<Message> msgs = null;
                    if (batch > 1) {
                        msgs = new java.util.ArrayList<>(batch);
                        for (int i = 0; i < batch; i++) {
                            msgs.add(new Message(topic, body));
                        }
                    }
                    long begin = System.nanoTime();
                    try {
                        SendResult r = transactional
                                ? ((TransactionMQProducer) producer).sendMessageInTransaction(msg, null)
                                : msgs != null ? producer.send(msgs) : producer.send(msg);
                        long micros = (System.nanoTime() - begin) / 1000;
                        if (r.getSendStatus() != SendStatus.SEND_OK) {
                            notOk.increment();
                        }
                        ok.add(msgs != null ? batch : 1);
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
                    } catch (RemotingException | MQBrokerException e) {
                        failed.increment();
                        if (firstError.compareAndSet(0, 1)) {
                            System.out.println("send failed: " + e);
                        }
                        // The official benchmark backs off 3 s after such a failure.
                        sleep(3000);
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
            System.out.printf(
                    "Send TPS: %d Max RT(ms): %.3f Average RT(ms): %.3f Send Failed: %d total: %d%n",
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
            System.out.printf("RESULT mode=fill sent=%d failed=%d not_ok=%d%n", ok.sum(), failed.sum(), notOk.sum());
            producer.shutdown();
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
                "RESULT mode=produce transactional=%b batch=%d threads=%d size=%d window_s=%.2f sent=%d tps=%.0f"
                        + " avg_ms=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f failed=%d not_ok=%d %s%n",
                transactional, batch, threads, size, secs, sent, sent / secs, all.meanMicros() / 1000,
                all.quantileMicros(0.50) / 1000.0, all.quantileMicros(0.99) / 1000.0,
                all.maxMicros() / 1000.0, failed.sum() - failedFrom, notOk.sum(), mem);
        producer.shutdown();
    }

    // ---------------------------------------------------------------- consume

    static void consume(Args a) throws Exception {
        String namesrv = a.str("namesrv", "127.0.0.1:9876");
        String topic = a.str("topic", "BenchmarkTest");
        String group = a.str("group", "benchmark_consumer");
        int threads = (int) a.num("threads", 20);
        long timeout = a.num("timeout", 600);
        long hz = a.num("hz", 100);
        List<String> cpuPids = a.pids("cpuPids");
        List<String> rssPids = a.pids("rssPids");

        // The backlog: every queue's stored messages, from the brokers' own offsets.
        DefaultMQProducer admin = producer(namesrv, "benchmark_admin");
        long backlog = 0;
        List<MessageQueue> mqs = null;
        // On a loaded machine the client's name-server channel lock (3 s) can time out, which it
        // reports as "connect to null failed"; a few tries ride that out.
        for (int attempt = 1; mqs == null; attempt++) {
            try {
                mqs = new ArrayList<>(admin.fetchPublishMessageQueues(topic));
            } catch (Exception e) {
                if (attempt == 5) {
                    throw e;
                }
                System.out.println("route query failed, retrying: " + e);
                Thread.sleep(1000);
            }
        }
        for (MessageQueue mq : mqs) {
            backlog += admin.maxOffset(mq) - admin.minOffset(mq);
        }
        admin.shutdown();
        System.out.printf("backlog: %d messages in %d queues%n", backlog, mqs.size());

        LongAdder received = new LongAdder();
        LongAdder second = new LongAdder();
        long target = backlog;
        CountDownLatch done = new CountDownLatch(1);
        long[] doneAt = new long[1];
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(group);
        consumer.setNamesrvAddr(namesrv);
        consumer.setInstanceName(group + "_" + System.nanoTime());
        consumer.setVipChannelEnabled(false);
        consumer.setConsumeThreadMin(threads);
        consumer.setConsumeThreadMax(threads);
        // The official benchmark relies on the broker answering offset 0 for a new group while
        // the log is in memory; asking for the first offset says it outright.
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            received.add(msgs.size());
            second.add(msgs.size());
            if (received.sum() >= target && done.getCount() > 0) {
                synchronized (doneAt) {
                    if (doneAt[0] == 0) {
                        doneAt[0] = System.nanoTime();
                    }
                }
                done.countDown();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        Thread ticker = ticker(() -> System.out.printf("Consume TPS: %d total: %d%n", second.sumThenReset(), received.sum()));
        Cpu from = Cpu.now(cpuPids);
        consumer.start();
        boolean drained = done.await(timeout, TimeUnit.SECONDS);
        Cpu to = Cpu.now(cpuPids);
        long end;
        synchronized (doneAt) {
            end = drained ? doneAt[0] : to.nanos();
        }
        long got = received.sum();
        String mem = cpuAndMemory(from, to, got, hz, rssPids);
        ticker.interrupt();
        double secs = (end - from.nanos()) / 1e9;
        System.out.printf("RESULT mode=consume backlog=%d received=%d drained=%b window_s=%.2f tps=%.0f %s%n",
                backlog, got, drained, secs, Math.min(got, backlog) / secs, mem);
        consumer.shutdown();
    }

    // ---------------------------------------------------------------- loopback

    /** One TCP stream of 1 MiB writes, then a 1 KiB request / 64 B answer ping-pong. */
    static void loopback(Args a) throws Exception {
        long secs = a.num("duration", 3);
        InetAddress lo = InetAddress.getLoopbackAddress();

        long streamBytes;
        double streamSecs;
        try (ServerSocket server = new ServerSocket(0, 1, lo)) {
            Thread sink = new Thread(() -> {
                try (Socket s = server.accept(); InputStream in = s.getInputStream()) {
                    byte[] buf = new byte[1 << 20];
                    while (in.read(buf) >= 0) {
                        // discard
                    }
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            sink.start();
            try (Socket c = new Socket()) {
                c.connect(new InetSocketAddress(lo, server.getLocalPort()));
                OutputStream out = c.getOutputStream();
                byte[] buf = new byte[1 << 20];
                long start = System.nanoTime();
                long deadline = start + secs * 1_000_000_000L;
                long n = 0;
                while (System.nanoTime() < deadline) {
                    out.write(buf);
                    n += buf.length;
                }
                streamSecs = (System.nanoTime() - start) / 1e9;
                streamBytes = n;
            }
            sink.join();
        }

        long trips = 0;
        double pingSecs;
        try (ServerSocket server = new ServerSocket(0, 1, lo)) {
            Thread echo = new Thread(() -> {
                try (Socket s = server.accept()) {
                    s.setTcpNoDelay(true);
                    InputStream in = s.getInputStream();
                    OutputStream out = s.getOutputStream();
                    byte[] req = new byte[1024];
                    byte[] ans = new byte[64];
                    while (readFully(in, req)) {
                        out.write(ans);
                    }
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            echo.start();
            try (Socket c = new Socket()) {
                c.connect(new InetSocketAddress(lo, server.getLocalPort()));
                c.setTcpNoDelay(true);
                InputStream in = c.getInputStream();
                OutputStream out = c.getOutputStream();
                byte[] req = new byte[1024];
                byte[] ans = new byte[64];
                long start = System.nanoTime();
                long deadline = start + secs * 1_000_000_000L;
                while (System.nanoTime() < deadline) {
                    out.write(req);
                    if (!readFully(in, ans)) {
                        throw new IllegalStateException("echo closed");
                    }
                    trips++;
                }
                pingSecs = (System.nanoTime() - start) / 1e9;
            }
            echo.join();
        }
        System.out.printf("RESULT mode=loopback stream_mb_s=%.0f pingpong_per_s=%.0f pingpong_us=%.1f%n",
                streamBytes / streamSecs / 1e6, trips / pingSecs, pingSecs * 1e6 / trips);
    }

    private static boolean readFully(InputStream in, byte[] buf) throws java.io.IOException {
        int off = 0;
        while (off < buf.length) {
            int n = in.read(buf, off, buf.length - off);
            if (n < 0) {
                return false;
            }
            off += n;
        }
        return true;
    }
}

package petrel.compat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * Master/slave replication as the official client sees it. The cargo test runs a name server,
 * a SYNC_MASTER and its SLAVE as separate {@code petrel} processes and drives the master's
 * life from this program's {@code RESULT} lines.
 */
final class Replication {
    private Replication() {}

    /** How long the master's restart may take until a send is SEND_OK again. */
    private static final long RECOVERY_MS = 60_000;
    /** How long to wait for a file the cargo test creates. */
    private static final long STEP_MS = 120_000;

    /**
     * Options: {@code topic} (created on the master by the test), {@code messages},
     * {@code later} (messages sent after the restart), {@code after_kill} and
     * {@code after_restart} (files the test creates once the master is killed and once it is
     * restarted).
     *
     * <ol>
     *   <li>One producer sends a probe until SEND_OK (a SYNC_MASTER answers SLAVE_NOT_AVAILABLE
     *       until its slave connects), then {@code messages} messages, each of which must be
     *       SEND_OK: stored on the slave too. Prints {@code RESULT sent=}.
     *   <li>Waits for {@code after_kill}: the test has SIGKILLed the master and the name server
     *       routes the topic to the slave alone.
     *   <li>A push consumer of a new group, from the first offset, finds the slave through the
     *       name server and must get every acknowledged key. Prints
     *       {@code RESULT consumed_from_slave=}.
     *   <li>Waits for {@code after_restart}: the master runs again on its data and ports. The
     *       same producer retries every 500 ms until SEND_OK (within 60 s), sends {@code later}
     *       more, all SEND_OK, and the same consumer must get every one of them.
     * </ol>
     */
    static void killMasterConsumeFromSlave(Args args) throws Exception {
        String topic = args.get("topic");
        int n = args.getInt("messages", 300);
        int later = args.getInt("later", 50);
        Path afterKill = Paths.get(args.get("after_kill"));
        Path afterRestart = Paths.get(args.get("after_restart"));
        DefaultMQProducer producer = Clients.producer(args, args.name("ReplicationProducer"));
        // Keys any send may have stored (a non-OK answer may still leave the message on the
        // master), and those acknowledged with SEND_OK, which must be consumed.
        Set<String> attempted = ConcurrentHashMap.newKeySet();
        Set<String> acknowledged = new LinkedHashSet<>();

        // 1. In sync with the slave, then N sends that must all be SEND_OK.
        long probeMs = sendUntilOk(producer, topic, "probe-", RECOVERY_MS, attempted, acknowledged);
        Check.result("first_send_ok_ms", probeMs);
        Set<String> before = new LinkedHashSet<>();
        for (int i = 0; i < n; i++) {
            String key = "repl-" + i;
            attempted.add(key);
            SendResult r = producer.send(Sending.message(topic, key));
            Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + key + " (" + r + ")");
            acknowledged.add(key);
            before.add(key);
        }
        Check.result("sent", before.size());
        System.out.flush();

        // 2. The test kills the master.
        waitForFile(afterKill);

        // 3. A new group consumes everything from the slave.
        Map<String, AtomicInteger> consumed = new ConcurrentHashMap<>();
        AtomicInteger deliveries = new AtomicInteger();
        DefaultMQPushConsumer c = Clients.pushConsumer(args, args.name("ReplicationGroup"));
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                consumed.computeIfAbsent(String.valueOf(m.getKeys()), k -> new AtomicInteger()).incrementAndGet();
                deliveries.incrementAndGet();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        long consumerStarted = System.nanoTime();
        c.start();
        waitForKeys("the slave", consumed, acknowledged);
        Check.result("ms_to_consume_from_slave", (System.nanoTime() - consumerStarted) / 1_000_000);
        int fromSlave = 0;
        for (String key : before) {
            if (consumed.containsKey(key)) {
                fromSlave++;
            }
        }
        Check.result("consumed_from_slave", fromSlave);
        System.out.flush();

        // 4. The test restarts the master; the same producer gets SEND_OK again on its own.
        waitForFile(afterRestart);
        long recoveryMs = sendUntilOk(producer, topic, "after-", RECOVERY_MS, attempted, acknowledged);
        Check.result("ms_to_send_ok_after_restart", recoveryMs);
        Set<String> afterKeys = new LinkedHashSet<>();
        for (int i = 0; i < later; i++) {
            String key = "later-" + i;
            attempted.add(key);
            SendResult r = producer.send(Sending.message(topic, key));
            Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + key + " after the restart (" + r + ")");
            acknowledged.add(key);
            afterKeys.add(key);
        }
        Check.result("sent_after_restart", afterKeys.size());
        waitForKeys("the restarted cluster", consumed, acknowledged);
        int laterConsumed = 0;
        for (String key : afterKeys) {
            if (consumed.containsKey(key)) {
                laterConsumed++;
            }
        }
        Check.result("consumed_after_restart", laterConsumed);

        Thread.sleep(1000);
        Set<String> unknown = new TreeSet<>(consumed.keySet());
        unknown.removeAll(attempted);
        Check.that(unknown.isEmpty(), "consumed keys that were never sent: " + unknown);
        Check.result("acknowledged", acknowledged.size());
        Check.result("attempted", attempted.size());
        Check.result("consumed", consumed.size());
        Check.result("duplicates", deliveries.get() - consumed.size());
        c.shutdown();
        producer.shutdown();
    }

    /**
     * Sending through automatic failovers (controller mode). Options: {@code topic},
     * {@code threads} (4), {@code stop} (a file the test creates when its kills are done),
     * {@code poll_ms} (the producer's {@code pollNameServerInterval}: how soon it sees a new
     * master's address; 1000).
     *
     * <p>{@code threads} threads share one producer and send without pause, each key once,
     * keeping the keys answered SEND_OK. Every 200 ms a line {@code TICK acked=<n>
     * last_ok_ms=<epoch ms of the last SEND_OK>} tells the test how it goes. Once {@code stop}
     * exists the threads stop, and a push consumer of a new group must get every acknowledged
     * key. Prints {@code RESULT acknowledged=}, {@code failed=}, {@code consumed_acknowledged=}.
     */
    static void sendThroughFailovers(Args args) throws Exception {
        String topic = args.get("topic");
        int threads = args.getInt("threads", 4);
        Path stop = Paths.get(args.get("stop"));
        DefaultMQProducer producer = new DefaultMQProducer(args.name("FailoverProducer"));
        producer.setNamesrvAddr(args.namesrv());
        producer.setInstanceName("failover_" + System.nanoTime());
        producer.setVipChannelEnabled(false);
        producer.setPollNameServerInterval(args.getInt("poll_ms", 1000));
        producer.start();
        Set<String> attempted = ConcurrentHashMap.newKeySet();
        Set<String> acknowledged = ConcurrentHashMap.newKeySet();
        AtomicInteger failed = new AtomicInteger();
        java.util.concurrent.atomic.AtomicLong lastOk = new java.util.concurrent.atomic.AtomicLong();
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        List<Thread> senders = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int id = t;
            Thread th = new Thread(() -> {
                for (int i = 0; !done.get(); i++) {
                    String key = "f-" + id + "-" + i;
                    attempted.add(key);
                    try {
                        SendResult r = producer.send(Sending.message(topic, key));
                        if (r.getSendStatus() == SendStatus.SEND_OK) {
                            acknowledged.add(key);
                            lastOk.set(System.currentTimeMillis());
                            continue;
                        }
                    } catch (Exception e) {
                        // Refused or unreachable during a failover; the next key tries again.
                    }
                    failed.incrementAndGet();
                    try {
                        Thread.sleep(20);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
            th.start();
            senders.add(th);
        }
        long deadline = System.nanoTime() + 20L * STEP_MS * 1_000_000;
        while (!Files.exists(stop)) {
            Check.that(System.nanoTime() < deadline, "the test never created " + stop);
            System.out.println("TICK acked=" + acknowledged.size() + " last_ok_ms=" + lastOk.get());
            System.out.flush();
            Thread.sleep(200);
        }
        done.set(true);
        for (Thread th : senders) {
            th.join();
        }
        Check.result("acknowledged", acknowledged.size());
        Check.result("failed", failed.get());
        System.out.flush();

        Map<String, AtomicInteger> consumed = new ConcurrentHashMap<>();
        DefaultMQPushConsumer c = Clients.pushConsumer(args, args.name("FailoverCheck"));
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                consumed.computeIfAbsent(String.valueOf(m.getKeys()), k -> new AtomicInteger()).incrementAndGet();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        waitForKeys("the new master", consumed, acknowledged);
        int got = 0;
        for (String key : acknowledged) {
            if (consumed.containsKey(key)) {
                got++;
            }
        }
        Check.result("consumed_acknowledged", got);
        Set<String> unknown = new TreeSet<>(consumed.keySet());
        unknown.removeAll(attempted);
        Check.that(unknown.isEmpty(), "consumed keys that were never sent: " + unknown);
        c.shutdown();
        producer.shutdown();
    }

    /**
     * Options: {@code topic}, {@code messages}, {@code threads} (8). A probe until SEND_OK (a
     * SYNC_MASTER answers SLAVE_NOT_AVAILABLE until its slave connects), then {@code messages}
     * messages with keys {@code repl-0} ... sent by {@code threads} threads sharing one
     * producer; each must be SEND_OK. Prints {@code RESULT sent=} and the sends per second.
     */
    static void sendMany(Args args) throws Exception {
        String topic = args.get("topic");
        int n = args.getInt("messages", 100_000);
        int threads = args.getInt("threads", 8);
        DefaultMQProducer producer = Clients.producer(args, args.name("ReplicationProducer"));
        Set<String> attempted = ConcurrentHashMap.newKeySet();
        Set<String> acknowledged = ConcurrentHashMap.newKeySet();
        Check.result("first_send_ok_ms", sendUntilOk(producer, topic, "probe-", RECOVERY_MS, attempted, acknowledged));
        AtomicInteger next = new AtomicInteger();
        AtomicInteger ok = new AtomicInteger();
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Thread> senders = new ArrayList<>();
        long start = System.nanoTime();
        for (int t = 0; t < threads; t++) {
            Thread sender = new Thread(() -> {
                try {
                    for (int i = next.getAndIncrement(); i < n; i = next.getAndIncrement()) {
                        String key = "repl-" + i;
                        SendResult r = producer.send(Sending.message(topic, key));
                        Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + key + " (" + r + ")");
                        ok.incrementAndGet();
                    }
                } catch (Throwable e) {
                    failures.add(e);
                    next.set(n);
                }
            });
            sender.start();
            senders.add(sender);
        }
        for (Thread sender : senders) {
            sender.join();
        }
        if (!failures.isEmpty()) {
            throw new AssertionError(failures.size() + " sender(s) failed after " + ok.get() + " SEND_OK", failures.get(0));
        }
        long ms = Math.max(1, (System.nanoTime() - start) / 1_000_000);
        Check.result("sends_per_second", ok.get() * 1000L / ms);
        Check.result("sent", ok.get());
        producer.shutdown();
    }

    /**
     * Options: {@code topic}, {@code messages}, {@code wait_s} (120). A push consumer of a new
     * group, from the first offset, must get every key {@code repl-0} ... {@code repl-(n-1)}
     * that {@link #sendMany} sent, each with its body. Prints {@code RESULT consumed=} and
     * {@code RESULT duplicates=}.
     */
    static void consumeAll(Args args) throws Exception {
        String topic = args.get("topic");
        int n = args.getInt("messages", 100_000);
        long waitNanos = args.getInt("wait_s", 120) * 1_000_000_000L;
        Set<String> expected = new LinkedHashSet<>();
        for (int i = 0; i < n; i++) {
            expected.add("repl-" + i);
        }
        Map<String, AtomicInteger> consumed = new ConcurrentHashMap<>();
        AtomicInteger deliveries = new AtomicInteger();
        List<String> wrong = java.util.Collections.synchronizedList(new ArrayList<>());
        DefaultMQPushConsumer c = Clients.pushConsumer(args, args.name("ReplicationDrain"));
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                String key = String.valueOf(m.getKeys());
                String body = new String(m.getBody(), java.nio.charset.StandardCharsets.UTF_8);
                if (!body.equals("body of " + key)) {
                    wrong.add(key + " has body " + body);
                }
                consumed.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
                deliveries.incrementAndGet();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        long start = System.nanoTime();
        c.start();
        while (!consumed.keySet().containsAll(expected)) {
            if (System.nanoTime() - start > waitNanos) {
                List<String> missing = new ArrayList<>();
                for (String k : expected) {
                    if (!consumed.containsKey(k) && missing.size() < 5) {
                        missing.add(k);
                    }
                }
                int got = 0;
                for (String k : expected) {
                    if (consumed.containsKey(k)) {
                        got++;
                    }
                }
                throw new AssertionError(got + " of " + n + " messages consumed within " + args.getInt("wait_s", 120)
                        + " s, missing e.g. " + missing);
            }
            Thread.sleep(50);
        }
        long ms = Math.max(1, (System.nanoTime() - start) / 1_000_000);
        Check.that(wrong.isEmpty(), "messages with a wrong body: " + wrong.subList(0, Math.min(5, wrong.size())));
        Check.result("consumed_per_second", n * 1000L / ms);
        int ours = 0;
        for (String k : expected) {
            if (consumed.containsKey(k)) {
                ours++;
            }
        }
        Check.result("consumed", ours);
        Check.result("duplicates", deliveries.get() - consumed.size());
        c.shutdown();
    }

    /**
     * Sends {@code prefix0}, {@code prefix1}, ... every 500 ms until one is SEND_OK; returns how
     * long that took. Fails after {@code boundMs} with the last answer.
     */
    private static long sendUntilOk(DefaultMQProducer producer, String topic, String prefix, long boundMs,
            Set<String> attempted, Set<String> acknowledged) throws InterruptedException {
        long start = System.nanoTime();
        long deadline = start + boundMs * 1_000_000;
        String last = "nothing";
        for (int i = 0; ; i++) {
            String key = prefix + i;
            attempted.add(key);
            try {
                SendResult r = producer.send(Sending.message(topic, key));
                if (r.getSendStatus() == SendStatus.SEND_OK) {
                    acknowledged.add(key);
                    long ms = (System.nanoTime() - start) / 1_000_000;
                    Check.result(prefix + "attempts", i + 1);
                    return ms;
                }
                last = r.getSendStatus().toString();
            } catch (Exception e) {
                last = e.toString();
            }
            Check.that(System.nanoTime() < deadline,
                    "no SEND_OK within " + boundMs + " ms (" + (i + 1) + " attempts), last answer: " + last);
            Thread.sleep(500);
        }
    }

    /** Waits until every key of {@code keys} was consumed; fails naming a few missing ones. */
    private static void waitForKeys(String from, Map<String, AtomicInteger> consumed, Set<String> keys)
            throws InterruptedException {
        long deadline = System.nanoTime() + Clients.WAIT.toNanos();
        while (!consumed.keySet().containsAll(keys)) {
            if (System.nanoTime() > deadline) {
                List<String> missing = new ArrayList<>();
                for (String k : keys) {
                    if (!consumed.containsKey(k)) {
                        missing.add(k);
                    }
                }
                throw new AssertionError(missing.size() + " of " + keys.size() + " acknowledged messages never consumed from "
                        + from + " within " + Clients.WAIT + ", e.g. " + missing.subList(0, Math.min(5, missing.size())));
            }
            Thread.sleep(50);
        }
    }

    private static void waitForFile(Path file) throws InterruptedException {
        long deadline = System.nanoTime() + STEP_MS * 1_000_000;
        while (!Files.exists(file)) {
            Check.that(System.nanoTime() < deadline, "the test never created " + file);
            Thread.sleep(50);
        }
    }
}

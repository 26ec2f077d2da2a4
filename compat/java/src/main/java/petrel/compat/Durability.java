package petrel.compat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/** Where a new group starts, and what a broker restart keeps. */
final class Durability {
    private Durability() {}

    /**
     * A group that first starts after its topic holds messages, with the default
     * CONSUME_FROM_LAST_OFFSET, still gets all of them: the client asks the broker for the
     * group's offset, and a broker that has none answers 0 for a queue whose first message is
     * still there (rather than QUERY_NOT_FOUND, on which the client would start at the end).
     * Holds for the push and the lite pull consumer alike.
     */
    static void firstStart(Args args) throws Exception {
        String topic = args.name("FirstStartTopic");
        int n = args.getInt("messages", 200);
        DefaultMQProducer producer = Sending.producer(args, args.name("FirstStartProducer"));
        Map<String, Message> sent = new LinkedHashMap<>();
        Map<String, SendResult> results = LitePull.sendAll(producer, topic, "first-", n, sent);

        DefaultMQPushConsumer push = new DefaultMQPushConsumer(args.name("FirstStartGroup"));
        Check.equal(ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET, push.getConsumeFromWhere(), "the push consumer's default");
        push.setNamesrvAddr(args.namesrv());
        push.setInstanceName(args.name("FirstStartGroup") + "_" + System.nanoTime());
        push.setVipChannelEnabled(false);
        Collector got = Collector.start(push, topic);
        got.expectExactlyOnce(sent.keySet());
        for (String key : sent.keySet()) {
            Sending.checkDelivery(args, sent.get(key), results.get(key), got.only(key));
        }
        got.shutdown();

        DefaultLitePullConsumer lite = LitePull.consumer(args, args.name("FirstStartLiteGroup"));
        Check.equal(ConsumeFromWhere.CONSUME_FROM_LAST_OFFSET, lite.getConsumeFromWhere(), "the lite pull consumer's default");
        lite.subscribe(topic, "*");
        lite.start();
        Set<String> polled = new TreeSet<>();
        for (MessageExt m : LitePull.pollUntil(lite, n)) {
            Check.that(polled.add(m.getKeys()), "lite pull got " + m.getKeys() + " twice");
        }
        Check.equal(new TreeSet<>(sent.keySet()), polled, "keys the lite pull consumer got");
        lite.shutdown();

        // Once the group has consumed, it resumes from its committed offsets, not from 0: a
        // second push consumer of the first group, started after more messages, gets only those.
        Map<String, Message> later = new LinkedHashMap<>();
        LitePull.sendAll(producer, topic, "later-", 20, later);
        DefaultMQPushConsumer again = new DefaultMQPushConsumer(args.name("FirstStartGroup"));
        again.setNamesrvAddr(args.namesrv());
        again.setInstanceName(args.name("FirstStartGroup") + "_again_" + System.nanoTime());
        again.setVipChannelEnabled(false);
        Collector gotLater = Collector.start(again, topic);
        gotLater.expectExactlyOnce(later.keySet());
        gotLater.shutdown();
        producer.shutdown();
    }

    /**
     * The other side of the first-start rule: once retention has deleted a queue's first
     * messages (min offset above 0), a broker without the group's offset answers
     * QUERY_NOT_FOUND, and a new group with the default CONSUME_FROM_LAST_OFFSET starts at the
     * end of each queue: it gets only what is sent after it started, none of the messages still
     * kept. The cargo test runs Petrel with retention deleting every full segment at once.
     */
    static void firstStartBehindDeletedMessages(Args args) throws Exception {
        String topic = args.name("TrimmedTopic");
        DefaultMQProducer producer = Sending.producer(args, args.name("TrimmedProducer"));
        for (int i = 0; i < args.getInt("messages", 400); i++) {
            Message m = Sending.message(topic, "old-" + i);
            m.setBody(new byte[1000]);
            Check.equal(SendStatus.SEND_OK, producer.send(m).getSendStatus(), "send status of old-" + i);
        }
        List<MessageQueue> queues = new ArrayList<>(producer.fetchPublishMessageQueues(topic));
        // Retention has settled when every queue's minimum is above 0 and stays put.
        List<Long> previous = null;
        long deadline = System.nanoTime() + Clients.WAIT.toNanos();
        while (true) {
            List<Long> mins = new ArrayList<>();
            for (MessageQueue q : queues) {
                mins.add(producer.minOffset(q));
            }
            if (mins.stream().allMatch(m -> m > 0) && mins.equals(previous)) {
                break;
            }
            Check.that(System.nanoTime() < deadline, "retention never moved every queue's minimum above 0: " + mins);
            previous = mins;
            Thread.sleep(500);
        }
        long kept = 0;
        for (MessageQueue q : queues) {
            kept += producer.maxOffset(q) - producer.minOffset(q);
        }
        Check.that(kept > 0, "messages still kept after retention: " + kept);
        Check.result("kept", kept);

        DefaultMQPushConsumer push = new DefaultMQPushConsumer(args.name("TrimmedGroup"));
        push.setNamesrvAddr(args.namesrv());
        push.setInstanceName(args.name("TrimmedGroup") + "_" + System.nanoTime());
        push.setVipChannelEnabled(false);
        Collector got = Collector.start(push, topic);
        // Each queue gets its process queue once its start offset is computed (the group's
        // retry topic has its own, not counted here).
        Clients.waitFor("the consumer to take all " + queues.size() + " queues",
                () -> push.getDefaultMQPushConsumerImpl().getRebalanceImpl().getProcessQueueTable().keySet().stream()
                        .filter(q -> q.getTopic().equals(topic)).count() == queues.size());
        Map<String, Message> later = new LinkedHashMap<>();
        LitePull.sendAll(producer, topic, "later-", 20, later);
        got.expectExactlyOnce(later.keySet());
        got.shutdown();
        producer.shutdown();
    }

    /**
     * Sends {@code messages} (paced, and never far ahead of the consumer, so the broker restart
     * the cargo test does falls in the middle of both sending and consuming) while a push consumer consumes. Prints
     * {@code RESULT half_consumed=} once half were consumed, the cusp at which the test restarts
     * Petrel. Afterwards every message whose send returned SEND_OK is consumed at least once,
     * and nothing is consumed that was not sent.
     */
    static void restartMidConsumption(Args args) throws Exception {
        String topic = args.name("RestartTopic");
        int total = args.getInt("messages", 2000);
        int pauseMs = args.getInt("pause_ms", 4);
        DefaultMQProducer producer = Clients.producer(args, args.name("RestartProducer"));
        Set<String> acknowledged = ConcurrentHashMap.newKeySet();
        Set<String> attempted = ConcurrentHashMap.newKeySet();
        List<String> failures = Collections.synchronizedList(new ArrayList<>());
        // The topic exists before the consumer starts, so its first rebalance finds the queues.
        send(producer, topic, 0, attempted, acknowledged, failures);

        Map<String, AtomicInteger> consumed = new ConcurrentHashMap<>();
        AtomicInteger deliveries = new AtomicInteger();
        DefaultMQPushConsumer c = Clients.pushConsumer(args, args.name("RestartGroup"));
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                consumed.computeIfAbsent(m.getKeys(), k -> new AtomicInteger()).incrementAndGet();
                deliveries.incrementAndGet();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();

        Thread sender = new Thread(() -> {
            try {
                for (int i = 1; acknowledged.size() < total; i++) {
                    // Keep the consumer close behind, so that when half is consumed, half is
                    // still to be sent however slow the machine.
                    while (acknowledged.size() - consumed.size() > total / 10) {
                        Thread.sleep(5);
                    }
                    boolean ok = send(producer, topic, i, attempted, acknowledged, failures);
                    // While the broker is away, try again at a user's pace, not in a tight loop.
                    Thread.sleep(ok ? pauseMs : 100);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "paced-sender");
        sender.start();

        Clients.waitFor("half of " + total + " consumed", () -> consumed.size() >= total / 2);
        Check.result("half_consumed", consumed.size());
        System.out.flush();
        long halfAt = System.nanoTime();
        int sentAtHalf = acknowledged.size();
        Check.result("acknowledged_at_half", sentAtHalf);

        // The broker is away for a moment, then every route and pull resumes on its own: give
        // the whole run the time of a restart on top of the usual wait.
        long deadline = System.nanoTime() + 2 * Clients.WAIT.toNanos();
        sender.join(2 * Clients.WAIT.toMillis());
        Check.that(!sender.isAlive(), "the sender reached " + total + " acknowledged sends (has " + acknowledged.size() + ")");
        while (!consumed.keySet().containsAll(acknowledged)) {
            if (System.nanoTime() > deadline) {
                Set<String> missing = new TreeSet<>(acknowledged);
                missing.removeAll(consumed.keySet());
                throw new AssertionError(missing.size() + " acknowledged messages never consumed, e.g. "
                        + new ArrayList<>(missing).subList(0, Math.min(5, missing.size())));
            }
            Thread.sleep(50);
        }
        Check.result("ms_from_half_to_all_consumed", (System.nanoTime() - halfAt) / 1_000_000);
        Thread.sleep(1000);
        Set<String> unknown = new TreeSet<>(consumed.keySet());
        unknown.removeAll(attempted);
        Check.that(unknown.isEmpty(), "consumed keys that were never sent: " + unknown);
        int duplicates = deliveries.get() - consumed.size();
        Check.result("acknowledged", acknowledged.size());
        Check.result("failed_sends", failures.size());
        Check.result("consumed", consumed.size());
        Check.result("duplicates", duplicates);
        if (!failures.isEmpty()) {
            Check.result("first_failure", failures.get(0));
        }
        c.shutdown();
        producer.shutdown();
    }

    private static boolean send(DefaultMQProducer producer, String topic, int i, Set<String> attempted, Set<String> acknowledged, List<String> failures) {
        String key = "restart-" + i;
        attempted.add(key);
        try {
            SendResult r = producer.send(Sending.message(topic, key));
            if (r.getSendStatus() == SendStatus.SEND_OK) {
                acknowledged.add(key);
                return true;
            }
            failures.add(key + ": " + r.getSendStatus());
        } catch (Exception e) {
            failures.add(key + ": " + e);
        }
        return false;
    }
}

package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerOrderly;
import org.apache.rocketmq.client.impl.consumer.ProcessQueue;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.MessageQueueSelector;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/** Orderly consumption: each key's messages in send order, also across a rebalance. */
final class Ordering {
    private Ordering() {}

    /** One delivery as the listener saw it, in the order the listeners saw them. */
    private static final class Delivery {
        final String consumer;
        final int key;
        final int seq;

        Delivery(String consumer, int key, int seq) {
            this.consumer = consumer;
            this.key = key;
            this.seq = seq;
        }
    }

    /**
     * A producer with a MessageQueueSelector (hash of the key) sends {@code keys x perKey}
     * messages; an orderly consumer gets them, and once it has some, a second orderly consumer of
     * the same group joins while the rest are still being sent and consumed. Every message is
     * delivered; for every key the first deliveries come in send order with no gap; each
     * consumer alone sees each key's messages strictly increasing; at most one message per
     * queue that moved is delivered twice, and only the last one the other consumer got (the
     * one in flight at the hand-over, which RocketMQ's client may replay); and the queues end up shared, the second consumer having locked its
     * half and consumed from it.
     */
    static void orderByKeyAcrossRebalance(Args args) throws Exception {
        // RocketMQ's client re-runs its rebalance every 20 s and a member that hands a queue over
        // with messages still buffered unlocks it 20 s later: a joining orderly consumer whose
        // first lock attempt loses waits that long. Shorter, so the test takes seconds; the
        // protocol is the same.
        System.setProperty("rocketmq.client.rebalance.waitInterval", "1000");
        System.setProperty("rocketmq.client.unlockDelayTimeMills", "2000");

        String topic = args.name("OrderTopic");
        String group = args.name("OrderGroup");
        int keys = args.getInt("keys", 20);
        int perKey = args.getInt("perKey", 50);
        int firstHalf = perKey / 2;

        List<Delivery> deliveries = Collections.synchronizedList(new ArrayList<>());
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger gotByFirst = new AtomicInteger();
        AtomicInteger gotBySecond = new AtomicInteger();

        DefaultMQProducer producer = Retry.producer(args, args.name("OrderProducer"));
        MessageQueueSelector byKey = (mqs, msg, key) -> mqs.get(Math.floorMod(key.hashCode(), mqs.size()));
        // The first message creates the topic; the consumer then finds its route at start.
        send(producer, byKey, topic, 0, 0);

        DefaultMQPushConsumer first = orderly(args, group, topic, "first", deliveries, problems, gotByFirst);
        first.start();

        for (int seq = 0; seq < firstHalf; seq++) {
            for (int key = 0; key < keys; key++) {
                if (seq == 0 && key == 0) {
                    continue;
                }
                send(producer, byKey, topic, key, seq);
            }
        }
        Clients.waitFor("the first consumer to get 100 messages", () -> gotByFirst.get() >= 100 || !problems.isEmpty());

        // The next quarter is sent while the second consumer joins and the queues move; the
        // last one after it holds its queues, so it surely consumes some.
        int lastQuarter = firstHalf + (perKey - firstHalf) / 2;
        AtomicReference<Throwable> sendFailure = new AtomicReference<>();
        Thread sender = new Thread(() -> {
            try {
                for (int seq = firstHalf; seq < lastQuarter; seq++) {
                    for (int key = 0; key < keys; key++) {
                        send(producer, byKey, topic, key, seq);
                    }
                    Thread.sleep(20);
                }
            } catch (Throwable t) {
                sendFailure.set(t);
            }
        });
        sender.start();
        int deliveredBeforeJoin = deliveries.size();
        DefaultMQPushConsumer second = orderly(args, group, topic, "second", deliveries, problems, gotBySecond);
        second.start();
        Clients.waitFor("the second consumer to lock queues of " + topic,
                () -> lockedQueues(second, topic) > 0 || !problems.isEmpty());
        sender.join(Clients.WAIT.toMillis());
        Check.that(!sender.isAlive(), "the sender finished");
        Check.equal(null, sendFailure.get(), "send failure");
        for (int seq = lastQuarter; seq < perKey; seq++) {
            for (int key = 0; key < keys; key++) {
                send(producer, byKey, topic, key, seq);
            }
        }

        int total = keys * perKey;
        Clients.waitFor("every one of " + total + " messages delivered", () -> distinct(deliveries) >= total || !problems.isEmpty());
        Clients.waitFor("the second consumer to consume messages", () -> gotBySecond.get() > 0 || !problems.isEmpty());
        Thread.sleep(500);
        Check.that(problems.isEmpty(), "listener problems: " + problems);

        List<Delivery> all;
        synchronized (deliveries) {
            all = new ArrayList<>(deliveries);
        }
        Map<Integer, Integer> next = new HashMap<>();
        Map<String, Integer> lastSeen = new HashMap<>();
        int duplicates = 0;
        for (Delivery d : all) {
            int want = next.getOrDefault(d.key, 0);
            if (d.seq == want) {
                next.put(d.key, want + 1);
            } else if (d.seq < want) {
                // Only the message the other consumer was consuming when it gave the queue up.
                String other = d.consumer.equals("first") ? "second" : "first";
                Check.equal(want - 1, d.seq, "the message of key " + d.key + " the " + d.consumer
                        + " consumer got again (the last one delivered)");
                Check.equal(d.seq, lastSeen.get(other + "/" + d.key), "the last message of key " + d.key + " the " + other
                        + " consumer got, which the " + d.consumer + " consumer got again");
                duplicates++;
            } else {
                throw new AssertionError("key " + d.key + ": message " + d.seq + " was delivered (to the " + d.consumer
                        + " consumer) before message " + want);
            }
            String perConsumer = d.consumer + "/" + d.key;
            Integer last = lastSeen.put(perConsumer, d.seq);
            Check.that(last == null || d.seq > last, "the " + d.consumer + " consumer got key " + d.key + " message " + d.seq
                    + " after message " + last);
        }
        for (int key = 0; key < keys; key++) {
            Check.equal(perKey, next.getOrDefault(key, 0), "messages of key " + key + " delivered in order");
        }
        Check.equal(total, all.size() - duplicates, "first deliveries");
        int queues = producer.fetchPublishMessageQueues(topic).size();
        int firstQueues = lockedQueues(first, topic);
        int secondQueues = lockedQueues(second, topic);
        Check.that(firstQueues + secondQueues == queues && Math.abs(firstQueues - secondQueues) <= 1,
                "the " + queues + " queues are shared after the rebalance: the first consumer locks " + firstQueues
                        + ", the second " + secondQueues);
        // The client that gives a queue up saves its offset before it waits for the message it
        // is consuming (one per queue, the batch size being 1), so the new owner may get that
        // one again: at most one duplicate per queue that moved.
        Check.that(duplicates <= secondQueues, duplicates + " messages were delivered twice, but only " + secondQueues
                + " queues moved");
        Check.result("delivered_before_join", deliveredBeforeJoin);
        Check.result("first_consumer", gotByFirst.get());
        Check.result("second_consumer", gotBySecond.get());
        Check.result("second_consumer_queues", secondQueues);
        Check.result("duplicates", duplicates);
        second.shutdown();
        first.shutdown();
        producer.shutdown();
    }

    /**
     * An orderly consumer (maxReconsumeTimes 2) answers SUSPEND_CURRENT_QUEUE_A_MOMENT to
     * message {@code m1} of five sent to one queue: the client re-delivers it in place with
     * reconsumeTimes 0, 1, 2 (each at least the suspend time after the last), holding {@code m2}
     * and later back; after the third attempt it hands {@code m1} over with a plain send to
     * {@code %RETRY%<group>} carrying reconsumeTimes 2 and maxReconsumeTimes 2, which the broker
     * must put in {@code %DLQ%<group>} (4.9.8's broker: reconsumeTimes >= max; 5.x: the group
     * holds orderly locks), not in the retry topic, where the consumer would get it again and
     * again. Then the queue moves on: the deliveries are exactly m0, m1 x3, m2, m3, m4 in that
     * order, and the DLQ holds just {@code m1} with its body, tags, keys, user properties and
     * message id, and RETRY_TOPIC naming its topic. Option {@code levels}: the broker's delay
     * levels in ms.
     */
    static void orderlySuspendThenDeadLetter(Args args) throws Exception {
        // The consumer must already pull its retry queue, so that a message wrongly sent there
        // comes back within the test (see Retry.reconsumeLaterThenDeadLetter).
        System.setProperty("rocketmq.client.rebalance.waitInterval", "1000");
        long[] levels = Retry.levels(args);
        String topic = args.name("OrderlyRetryTopic");
        String group = args.name("OrderlyRetryGroup");
        String retryTopic = MixAll.getRetryTopic(group);
        String dlqTopic = MixAll.getDLQTopic(group);
        long suspendMs = 200;

        DefaultMQProducer producer = Retry.producer(args, args.name("OrderlyRetryProducer"));
        MessageQueueSelector first = (mqs, msg, arg) -> mqs.get(0);
        Map<String, String> ids = new TreeMap<>();
        ids.put("m0", sendTo(producer, first, topic, "m0"));

        List<String> deliveries = Collections.synchronizedList(new ArrayList<>());
        // The message id of each delivery, checked against ids once every send has returned:
        // the listener must not read ids, which this thread is still filling (m1 arrives while
        // m2 is being sent, and a TreeMap read during a put can miss a key that is there).
        List<Map.Entry<String, String>> deliveredIds = Collections.synchronizedList(new ArrayList<>());
        List<Long> m1Arrivals = Collections.synchronizedList(new ArrayList<>());
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        DefaultMQPushConsumer c = Clients.pushConsumer(args, group);
        c.setMaxReconsumeTimes(2);
        c.setPollNameServerInterval(1000);
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerOrderly) (msgs, ctx) -> {
            boolean suspend = false;
            for (MessageExt m : msgs) {
                String key = String.valueOf(m.getKeys());
                String body = new String(m.getBody(), StandardCharsets.UTF_8);
                if (!topic.equals(m.getTopic()) || !("body of " + key).equals(body) || !"O".equals(m.getTags())
                        || !key.equals(m.getUserProperty("who"))) {
                    problems.add("message " + key + "@" + m.getReconsumeTimes() + ": topic <" + m.getTopic() + ">, body <"
                            + body + ">, tags <" + m.getTags() + ">, id " + m.getMsgId() + ", properties " + m.getProperties());
                }
                deliveries.add(key + "@" + m.getReconsumeTimes());
                deliveredIds.add(Map.entry(key + "@" + m.getReconsumeTimes(), m.getMsgId()));
                if (key.equals("m1")) {
                    m1Arrivals.add(System.nanoTime());
                    suspend = true;
                }
            }
            if (suspend) {
                ctx.setSuspendCurrentQueueTimeMillis(suspendMs);
                return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT;
            }
            return ConsumeOrderlyStatus.SUCCESS;
        });
        c.start();
        Clients.waitFor("the consumer to pull its retry queue " + retryTopic, () -> c.getDefaultMQPushConsumerImpl()
                .getRebalanceImpl().getProcessQueueTable().keySet().stream().anyMatch(q -> q.getTopic().equals(retryTopic)));
        for (int i = 1; i < 5; i++) {
            ids.put("m" + i, sendTo(producer, first, topic, "m" + i));
        }
        Clients.waitFor("m4 delivered", () -> deliveries.contains("m4@0") || !problems.isEmpty());
        List<MessageExt> dead = Retry.readAll(args, dlqTopic, 1);
        // Had m1 gone to the retry topic, it would come back after level 3 + 2.
        Thread.sleep(levels[5] + Retry.LATE_MS);
        c.shutdown();
        producer.shutdown();
        Check.that(problems.isEmpty(), "deliveries differ from what was sent: " + problems);
        List<String> got;
        synchronized (deliveries) {
            got = new ArrayList<>(deliveries);
        }
        Check.equal(List.of("m0@0", "m1@0", "m1@1", "m1@2", "m2@0", "m3@0", "m4@0"), got, "deliveries in order");
        synchronized (deliveredIds) {
            for (Map.Entry<String, String> d : deliveredIds) {
                String key = d.getKey().substring(0, d.getKey().indexOf('@'));
                Check.equal(ids.get(key), d.getValue(), "message id of delivery " + d.getKey());
            }
        }
        for (int i = 1; i < m1Arrivals.size(); i++) {
            long waited = (m1Arrivals.get(i) - m1Arrivals.get(i - 1)) / 1_000_000;
            Check.that(waited >= suspendMs, "attempt " + i + " of m1 came " + waited + " ms after the one before, suspended "
                    + suspendMs + " ms");
        }
        Check.equal(1, dead.size(), "messages in " + dlqTopic);
        MessageExt m = dead.get(0);
        String body = new String(m.getBody(), StandardCharsets.UTF_8);
        Check.equal("m1", m.getKeys(), "keys of the dead letter");
        Check.equal("body of m1", body, "body of the dead letter");
        Check.equal("O", m.getTags(), "tags of the dead letter");
        Check.equal("m1", m.getUserProperty("who"), "user property of the dead letter");
        Check.equal(ids.get("m1"), m.getMsgId(), "message id of the dead letter");
        Check.equal(topic, m.getProperty(MessageConst.PROPERTY_RETRY_TOPIC), "RETRY_TOPIC of the dead letter");
        Check.result("dead_letter_reconsume_times", m.getReconsumeTimes());
    }

    private static String sendTo(DefaultMQProducer producer, MessageQueueSelector selector, String topic, String key)
            throws Exception {
        Message m = new Message(topic, "O", key, ("body of " + key).getBytes(StandardCharsets.UTF_8));
        m.putUserProperty("who", key);
        SendResult r = producer.send(m, selector, null);
        Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + key);
        return r.getMsgId();
    }

    private static void send(DefaultMQProducer producer, MessageQueueSelector byKey, String topic, int key, int seq)
            throws Exception {
        String k = "key-" + key;
        Message m = new Message(topic, "order", k, (k + ":" + seq).getBytes(StandardCharsets.UTF_8));
        m.putUserProperty("seq", Integer.toString(seq));
        SendResult r = producer.send(m, byKey, k);
        Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + k + ":" + seq);
    }

    private static DefaultMQPushConsumer orderly(Args args, String group, String topic, String name,
            List<Delivery> deliveries, List<String> problems, AtomicInteger count) throws Exception {
        DefaultMQPushConsumer c = Clients.pushConsumer(args, group);
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerOrderly) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                String body = new String(m.getBody(), StandardCharsets.UTF_8);
                int colon = body.indexOf(':');
                String k = body.substring(0, colon);
                String seq = body.substring(colon + 1);
                if (!k.equals(m.getKeys()) || !seq.equals(m.getUserProperty("seq"))) {
                    problems.add("message <" + body + "> has keys <" + m.getKeys() + "> and properties " + m.getProperties());
                }
                deliveries.add(new Delivery(name, Integer.parseInt(k.substring(4)), Integer.parseInt(seq)));
                count.incrementAndGet();
            }
            // Slow enough that the first consumer still holds unconsumed messages when the
            // second one joins.
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return ConsumeOrderlyStatus.SUCCESS;
        });
        return c;
    }

    private static int distinct(List<Delivery> deliveries) {
        synchronized (deliveries) {
            java.util.Set<Long> seen = new java.util.HashSet<>();
            for (Delivery d : deliveries) {
                seen.add(((long) d.key << 32) | d.seq);
            }
            return seen.size();
        }
    }

    private static int lockedQueues(DefaultMQPushConsumer c, String topic) {
        int n = 0;
        for (Map.Entry<MessageQueue, ProcessQueue> e : c.getDefaultMQPushConsumerImpl().getRebalanceImpl()
                .getProcessQueueTable().entrySet()) {
            if (e.getKey().getTopic().equals(topic) && e.getValue().isLocked() && !e.getValue().isDropped()) {
                n++;
            }
        }
        return n;
    }
}

package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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
import org.apache.rocketmq.common.message.Message;
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
     * delivered; for every key the first deliveries come in send order with no gap (a
     * redelivery of an earlier message is allowed, as RocketMQ allows one after a rebalance);
     * each consumer alone sees each key's messages strictly increasing; and the second consumer
     * really took queues over (it locked some and consumed from them).
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
        Check.result("delivered_before_join", deliveredBeforeJoin);
        Check.result("first_consumer", gotByFirst.get());
        Check.result("second_consumer", gotBySecond.get());
        Check.result("second_consumer_queues", secondQueues);
        Check.result("duplicates", duplicates);
        second.shutdown();
        first.shutdown();
        producer.shutdown();
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

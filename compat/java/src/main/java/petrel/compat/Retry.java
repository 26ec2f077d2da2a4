package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.rocketmq.client.consumer.DefaultMQPullConsumer;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.PullResult;
import org.apache.rocketmq.client.consumer.PullStatus;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.MixAll;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/** Consumer retries (RECONSUME_LATER) through the delay levels, and dead letters. */
final class Retry {
    private Retry() {}

    /** Tolerance for lateness on a loaded 2-core machine. */
    static final long LATE_MS = 1500;

    /** One delivery: when it arrived, when the listener answered, what it carried. */
    private static final class Delivery {
        final int reconsumeTimes;
        final long arrivedNanos;
        volatile long answeredNanos;
        volatile long answeredMillis;
        final String msgId;
        final long stored;

        Delivery(MessageExt m) {
            this.reconsumeTimes = m.getReconsumeTimes();
            this.arrivedNanos = System.nanoTime();
            this.msgId = m.getMsgId();
            this.stored = m.getStoreTimestamp();
        }
    }

    /**
     * A concurrent consumer with maxReconsumeTimes 2 answers RECONSUME_LATER to some
     * messages: {@code once-*} fail at their first delivery, {@code twice} at its first two,
     * {@code poison} always; the {@code ok-*} ones succeed. Each failed message comes back with
     * reconsumeTimes one higher, with the same message id, topic, body, tags, keys and user
     * properties, no earlier than delay level {@code 3 + reconsumeTimes} (the broker's choice
     * when the client leaves it, as here) after the failing answer and at most {@link #LATE_MS}
     * later. The poison message is delivered three times (reconsumeTimes 0, 1, 2), then lands in
     * {@code %DLQ%<group>} with its original body, tags, keys, user properties and message id,
     * reconsumeTimes 3 and RETRY_TOPIC naming its topic; nothing else does, and nothing is
     * delivered more often. Option {@code levels}: the broker's delay levels in ms, comma-separated.
     */
    static void reconsumeLaterThenDeadLetter(Args args) throws Exception {
        // A new group's retry topic is created by its first heartbeat, which the client sends
        // after looking its routes up; without a shorter poll (30 s) and rebalance (20 s) it
        // would pull its retry queue only that much later, as with RocketMQ's own broker.
        System.setProperty("rocketmq.client.rebalance.waitInterval", "1000");
        long[] levels = levels(args);
        String topic = args.name("RetryTopic");
        String group = args.name("RetryGroup");
        String retryTopic = MixAll.getRetryTopic(group);
        String dlqTopic = MixAll.getDLQTopic(group);

        Map<String, Integer> failures = new TreeMap<>();
        for (int i = 0; i < 5; i++) {
            failures.put("ok-" + i, 0);
        }
        failures.put("once-0", 1);
        failures.put("once-1", 1);
        failures.put("twice", 2);
        // maxReconsumeTimes 2: three deliveries, then the dead letter queue.
        failures.put("poison", 3);

        DefaultMQProducer producer = producer(args, args.name("RetryProducer"));
        Map<String, String> sentIds = new TreeMap<>();
        // The first message creates the topic, so the consumer finds its route at start.
        sentIds.put("ok-0", send(producer, topic, "ok-0"));

        Map<String, List<Delivery>> got = Collections.synchronizedMap(new TreeMap<>());
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        DefaultMQPushConsumer c = Clients.pushConsumer(args, group);
        c.setMaxReconsumeTimes(2);
        c.setPollNameServerInterval(1000);
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            if (msgs.size() != 1) {
                problems.add("a batch of " + msgs.size() + " messages, the default batch size is 1");
            }
            boolean fail = false;
            List<Delivery> now = new ArrayList<>();
            for (MessageExt m : msgs) {
                String key = String.valueOf(m.getKeys());
                Delivery d = new Delivery(m);
                now.add(d);
                String wrong = differences(m, topic, key);
                if (wrong != null) {
                    problems.add("delivery " + m.getReconsumeTimes() + " of " + key + ": " + wrong);
                }
                got.computeIfAbsent(key, k -> Collections.synchronizedList(new ArrayList<>())).add(d);
                Integer failing = failures.get(key);
                fail |= failing == null || m.getReconsumeTimes() < failing;
            }
            long answered = System.nanoTime();
            long answeredMillis = System.currentTimeMillis();
            now.forEach(d -> {
                d.answeredNanos = answered;
                d.answeredMillis = answeredMillis;
            });
            return fail ? ConsumeConcurrentlyStatus.RECONSUME_LATER : ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        Clients.waitFor("the consumer to pull its retry queue " + retryTopic, () -> c.getDefaultMQPushConsumerImpl()
                .getRebalanceImpl().getProcessQueueTable().keySet().stream().anyMatch(q -> q.getTopic().equals(retryTopic)));

        for (String key : failures.keySet()) {
            if (!sentIds.containsKey(key)) {
                sentIds.put(key, send(producer, topic, key));
            }
        }
        Clients.waitFor("every message delivered as often as it fails, plus once", () -> {
            for (Map.Entry<String, Integer> e : failures.entrySet()) {
                List<Delivery> ds = got.get(e.getKey());
                if (ds == null || ds.size() < Math.min(e.getValue() + 1, 3)) {
                    return !problems.isEmpty();
                }
            }
            return true;
        });

        readAll(args, dlqTopic, 1);
        // A fourth delivery of the poison message would come one level (5) after the third.
        Thread.sleep(levels[5] + LATE_MS);
        List<MessageExt> dead = readAll(args, dlqTopic, 1);
        c.shutdown();
        Check.that(problems.isEmpty(), "deliveries differ from what was sent: " + problems);

        for (Map.Entry<String, Integer> e : failures.entrySet()) {
            String key = e.getKey();
            List<Delivery> ds;
            synchronized (got) {
                ds = new ArrayList<>(got.get(key));
            }
            List<Integer> want = new ArrayList<>();
            for (int rt = 0; rt <= Math.min(e.getValue(), 2); rt++) {
                want.add(rt);
            }
            List<Integer> times = new ArrayList<>();
            ds.forEach(d -> times.add(d.reconsumeTimes));
            Check.equal(want, times, "reconsumeTimes of the deliveries of " + key);
            for (int i = 0; i < ds.size(); i++) {
                Check.equal(sentIds.get(key), ds.get(i).msgId, "message id of delivery " + i + " of " + key);
                if (i == 0) {
                    continue;
                }
                long delay = levels[3 + ds.get(i - 1).reconsumeTimes];
                long waited = (ds.get(i).arrivedNanos - ds.get(i - 1).answeredNanos) / 1_000_000;
                Check.result("retry_wait_ms." + key + "." + i, waited);
                Check.that(waited >= delay, key + " came back " + waited + " ms after it failed, before its delay level ("
                        + delay + " ms)");
                Check.that(waited <= delay + LATE_MS, key + " came back " + waited + " ms after it failed, its delay level is "
                        + delay + " ms (the broker stored the retry " + (ds.get(i).stored - ds.get(i - 1).answeredMillis)
                        + " ms after the failure)");
            }
        }

        Check.equal(1, dead.size(), "messages in " + dlqTopic);
        MessageExt m = dead.get(0);
        Check.equal(dlqTopic, m.getTopic(), "topic of the dead letter");
        String wrong = differences(m, dlqTopic, "poison");
        Check.that(wrong == null, "the dead letter differs from what was sent: " + wrong);
        Check.equal(sentIds.get("poison"), m.getMsgId(), "message id of the dead letter");
        Check.equal(3, m.getReconsumeTimes(), "reconsumeTimes of the dead letter");
        Check.equal(topic, m.getProperty(MessageConst.PROPERTY_RETRY_TOPIC), "RETRY_TOPIC of the dead letter");
        producer.shutdown();
    }

    private static String send(DefaultMQProducer producer, String topic, String key) throws Exception {
        Message m = new Message(topic, "R", key, ("body of " + key).getBytes(StandardCharsets.UTF_8));
        m.putUserProperty("who", key);
        m.putUserProperty("colour", "green");
        SendResult r = producer.send(m);
        Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + key);
        return r.getMsgId();
    }

    /** What differs between a delivery and what {@link #send} sent, or null. */
    private static String differences(MessageExt m, String topic, String key) {
        String body = new String(m.getBody(), StandardCharsets.UTF_8);
        if (!topic.equals(m.getTopic()) || !("body of " + key).equals(body) || !"R".equals(m.getTags())
                || !key.equals(m.getUserProperty("who")) || !"green".equals(m.getUserProperty("colour"))) {
            return "topic <" + m.getTopic() + ">, body <" + body + ">, tags <" + m.getTags() + ">, keys <" + m.getKeys()
                    + ">, properties " + m.getProperties();
        }
        return null;
    }

    /**
     * {@link Clients#producer} with a 10 s send timeout instead of 3 s: a cold JVM's first
     * send also looks the route up and connects, which passed 3 s on a loaded 2-core machine.
     * Used by the consumption scenarios, whose subject is not the send.
     */
    static DefaultMQProducer producer(Args args, String group) throws Exception {
        DefaultMQProducer p = Clients.producer(args, group);
        p.setSendMsgTimeout(10_000);
        return p;
    }

    /** The broker's delay levels in ms from option {@code levels}. */
    static long[] levels(Args args) {
        String[] parts = args.get("levels").split(",");
        long[] ms = new long[parts.length + 1];
        for (int i = 0; i < parts.length; i++) {
            ms[i + 1] = Long.parseLong(parts[i].trim());
        }
        return ms;
    }

    /**
     * Waits until {@code topic} (one broker, found through the name server) holds at least
     * {@code atLeast} messages, then returns every message in it, read with a pull consumer.
     */
    static List<MessageExt> readAll(Args args, String topic, int atLeast) throws Exception {
        DefaultMQPullConsumer reader = new DefaultMQPullConsumer(args.name("Reader"));
        reader.setNamesrvAddr(args.namesrv());
        reader.setInstanceName(args.name("Reader") + "_" + System.nanoTime());
        reader.setVipChannelEnabled(false);
        reader.start();
        try {
            long deadline = System.nanoTime() + Clients.WAIT.toNanos();
            while (true) {
                List<MessageExt> all = new ArrayList<>();
                try {
                    for (MessageQueue mq : reader.fetchSubscribeMessageQueues(topic)) {
                        long offset = 0;
                        while (true) {
                            PullResult r = reader.pull(mq, "*", offset, 32);
                            if (r.getPullStatus() != PullStatus.FOUND) {
                                break;
                            }
                            all.addAll(r.getMsgFoundList());
                            offset = r.getNextBeginOffset();
                        }
                    }
                } catch (MQClientException e) {
                    // No route yet: the topic is created by the first message sent to it.
                }
                if (all.size() >= atLeast || System.nanoTime() > deadline) {
                    return all;
                }
                Thread.sleep(100);
            }
        } finally {
            reader.shutdown();
        }
    }
}

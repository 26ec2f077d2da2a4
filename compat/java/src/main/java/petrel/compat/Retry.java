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
     * messages, each delivery of each key following a plan of the delay level it asks for
     * (ConsumeConcurrentlyContext.setDelayLevelWhenNextConsume): {@code once-*} fail at their
     * first delivery and {@code twice} at its first two, leaving the level to the broker (0);
     * {@code chosen} fails once asking for level 2; {@code poison} fails every time;
     * {@code straight} fails once asking for -1 (no retry); the {@code ok-*} ones succeed.
     * Each failed message comes back with reconsumeTimes one higher, with the same message id,
     * topic, body, tags, keys and user properties, no earlier than its level after the failing
     * answer (the asked one, or {@code 3 + reconsumeTimes} when the broker chooses) and at most
     * {@link #LATE_MS} later. The poison message is delivered three times (reconsumeTimes 0, 1,
     * 2) and {@code straight} once; then both, and nothing else, are in {@code %DLQ%<group>},
     * with their original body, tags, keys, user properties and message id, reconsumeTimes
     * 3 and 1, and RETRY_TOPIC naming their topic. Nothing is delivered more often. Option
     * {@code levels}: the broker's delay levels in ms, comma-separated.
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

        // The delay level each failing delivery asks for; a delivery past its plan succeeds.
        Map<String, int[]> plans = new TreeMap<>();
        for (int i = 0; i < 5; i++) {
            plans.put("ok-" + i, new int[0]);
        }
        plans.put("once-0", new int[] {0});
        plans.put("once-1", new int[] {0});
        plans.put("twice", new int[] {0, 0});
        plans.put("chosen", new int[] {2});
        plans.put("poison", new int[] {0, 0, 0});
        plans.put("straight", new int[] {-1});
        // maxReconsumeTimes 2: a third failure is the last; -1 asks for no retry at all.
        Map<String, List<Integer>> wantTimes = new TreeMap<>();
        Map<String, Integer> wantDead = new TreeMap<>();
        plans.forEach((key, plan) -> {
            List<Integer> times = new ArrayList<>();
            for (int rt = 0; rt <= plan.length; rt++) {
                times.add(rt);
                if (rt == plan.length) {
                    break;
                }
                if (plan[rt] < 0 || rt >= 2) {
                    wantDead.put(key, rt + 1);
                    break;
                }
            }
            wantTimes.put(key, times);
        });

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
            MessageExt m = msgs.get(0);
            String key = String.valueOf(m.getKeys());
            Delivery d = new Delivery(m);
            String wrong = differences(m, topic, key);
            if (wrong != null) {
                problems.add("delivery " + m.getReconsumeTimes() + " of " + key + ": " + wrong);
            }
            got.computeIfAbsent(key, k -> Collections.synchronizedList(new ArrayList<>())).add(d);
            int[] plan = plans.getOrDefault(key, new int[0]);
            boolean fail = m.getReconsumeTimes() < plan.length;
            if (fail) {
                ctx.setDelayLevelWhenNextConsume(plan[m.getReconsumeTimes()]);
            }
            d.answeredMillis = System.currentTimeMillis();
            d.answeredNanos = System.nanoTime();
            return fail ? ConsumeConcurrentlyStatus.RECONSUME_LATER : ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        Clients.waitFor("the consumer to pull its retry queue " + retryTopic, () -> c.getDefaultMQPushConsumerImpl()
                .getRebalanceImpl().getProcessQueueTable().keySet().stream().anyMatch(q -> q.getTopic().equals(retryTopic)));

        for (String key : plans.keySet()) {
            if (!sentIds.containsKey(key)) {
                sentIds.put(key, send(producer, topic, key));
            }
        }
        Clients.waitFor("every message delivered as its plan says", () -> {
            for (Map.Entry<String, List<Integer>> e : wantTimes.entrySet()) {
                List<Delivery> ds = got.get(e.getKey());
                if (ds == null || ds.size() < e.getValue().size()) {
                    return !problems.isEmpty();
                }
            }
            return true;
        });

        readAll(args, dlqTopic, wantDead.size());
        // A fourth delivery of the poison message would come one level (5) after the third.
        Thread.sleep(levels[5] + LATE_MS);
        List<MessageExt> dead = readAll(args, dlqTopic, wantDead.size());
        c.shutdown();
        Check.that(problems.isEmpty(), "deliveries differ from what was sent: " + problems);

        for (Map.Entry<String, List<Integer>> e : wantTimes.entrySet()) {
            String key = e.getKey();
            List<Delivery> ds;
            synchronized (got) {
                ds = new ArrayList<>(got.get(key));
            }
            List<Integer> times = new ArrayList<>();
            ds.forEach(d -> times.add(d.reconsumeTimes));
            Check.equal(e.getValue(), times, "reconsumeTimes of the deliveries of " + key);
            for (int i = 0; i < ds.size(); i++) {
                Check.equal(sentIds.get(key), ds.get(i).msgId, "message id of delivery " + i + " of " + key);
                if (i == 0) {
                    continue;
                }
                int asked = plans.get(key)[i - 1];
                long delay = levels[asked > 0 ? asked : 3 + ds.get(i - 1).reconsumeTimes];
                long waited = (ds.get(i).arrivedNanos - ds.get(i - 1).answeredNanos) / 1_000_000;
                Check.result("retry_wait_ms." + key + "." + i, waited + " (stored after "
                        + (ds.get(i).stored - ds.get(i - 1).answeredMillis) + ")");
                Check.that(waited >= delay, key + " came back " + waited + " ms after it failed, before its delay level ("
                        + delay + " ms)");
                Check.that(waited <= delay + LATE_MS, key + " came back " + waited + " ms after it failed, its delay level is "
                        + delay + " ms (the broker stored the retry " + (ds.get(i).stored - ds.get(i - 1).answeredMillis)
                        + " ms after the failure)");
            }
        }

        Map<String, Integer> deadTimes = new TreeMap<>();
        for (MessageExt m : dead) {
            String key = String.valueOf(m.getKeys());
            Check.equal(null, deadTimes.put(key, m.getReconsumeTimes()), "an earlier dead letter of " + key);
            String wrong = differences(m, dlqTopic, key);
            Check.that(wrong == null, "the dead letter " + key + " differs from what was sent: " + wrong);
            Check.equal(sentIds.get(key), m.getMsgId(), "message id of the dead letter " + key);
            Check.equal(topic, m.getProperty(MessageConst.PROPERTY_RETRY_TOPIC), "RETRY_TOPIC of the dead letter " + key);
        }
        Check.equal(wantDead, deadTimes, "the reconsumeTimes of each message in " + dlqTopic);
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

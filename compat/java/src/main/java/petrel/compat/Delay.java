package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/** Messages sent with a delay level (Message.setDelayTimeLevel). */
final class Delay {
    private Delay() {}

    /** When a message was sent and when it arrived, in wall-clock ms (the broker's clock too). */
    private static final class Timing {
        final int level;
        final long sendStart;
        volatile long sendEnd;
        final List<Long> arrivals = Collections.synchronizedList(new ArrayList<>());
        /** When the broker stored the delivered message (re-posted it to the topic). */
        volatile long stored;

        Timing(int level, long sendStart) {
            this.level = level;
            this.sendStart = sendStart;
        }
    }

    /**
     * Against a consumer already caught up on the topic, messages sent with delay levels 1, 2,
     * 3, the last level and one past it (clamped to the last, as RocketMQ does) each arrive
     * once, never before their level's delay after the send began, at most
     * {@link Retry#LATE_MS} after it after the send returned, with topic, body, tags, keys and
     * user properties as sent and no DELAY property left. Option {@code levels}: the broker's
     * delay levels in ms, comma-separated.
     */
    static void delayLevelsAreNeitherEarlyNorLate(Args args) throws Exception {
        long[] levels = Retry.levels(args);
        int last = levels.length - 1;
        int[] asked = {1, 2, 3, last, last + 7};
        int perLevel = args.getInt("perLevel", 3);
        String topic = args.name("DelayTopic");

        DefaultMQProducer producer = Retry.producer(args, args.name("DelayProducer"));
        Map<String, Timing> timings = new ConcurrentHashMap<>();
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        // An undelayed first message creates the topic; once it arrived, the consumer is live.
        send(producer, topic, "warm-up", 0, timings);
        Check.result("first_send_ms", timings.get("warm-up").sendEnd - timings.get("warm-up").sendStart);

        DefaultMQPushConsumer c = Clients.pushConsumer(args, args.name("DelayGroup"));
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            long now = System.currentTimeMillis();
            for (MessageExt m : msgs) {
                String key = String.valueOf(m.getKeys());
                Timing t = timings.get(key);
                String body = new String(m.getBody(), StandardCharsets.UTF_8);
                if (t == null || !topic.equals(m.getTopic()) || !("body of " + key).equals(body) || !"D".equals(m.getTags())
                        || !key.equals(m.getUserProperty("who")) || !Integer.toString(t.level).equals(m.getUserProperty("level"))
                        || m.getDelayTimeLevel() != 0) {
                    problems.add("message " + key + ": topic <" + m.getTopic() + ">, body <" + body + ">, tags <"
                            + m.getTags() + ">, properties " + m.getProperties());
                } else {
                    t.stored = m.getStoreTimestamp();
                    t.arrivals.add(now);
                }
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        Clients.waitFor("the undelayed first message", () -> !timings.get("warm-up").arrivals.isEmpty() || !problems.isEmpty());

        for (int n = 0; n < perLevel; n++) {
            for (int level : asked) {
                send(producer, topic, "d" + level + "-" + n, level, timings);
            }
        }
        Clients.waitForEach("every delayed message", timings.values(), t -> !t.arrivals.isEmpty(), problems);
        // A second delivery would come soon after the first.
        Thread.sleep(1000);
        c.shutdown();
        producer.shutdown();
        Check.that(problems.isEmpty(), problems.size() + " deliveries differ from what was sent, the first: "
                + problems.subList(0, Math.min(3, problems.size())));

        for (Map.Entry<String, Timing> e : new TreeMap<>(timings).entrySet()) {
            Timing t = e.getValue();
            Check.equal(1, t.arrivals.size(), "deliveries of " + e.getKey());
            if (t.level == 0) {
                continue;
            }
            long delay = levels[Math.min(t.level, last)];
            long arrived = t.arrivals.get(0);
            Check.result("late_ms." + e.getKey(), arrived - t.sendEnd - delay);
            Check.that(arrived - t.sendStart >= delay, e.getKey() + " (level " + t.level + ", " + delay + " ms) arrived "
                    + (arrived - t.sendStart) + " ms after its send began");
            Check.that(arrived - t.sendEnd <= delay + Retry.LATE_MS, e.getKey() + " (level " + t.level + ", " + delay
                    + " ms) arrived " + (arrived - t.sendEnd) + " ms after its send returned (the broker re-posted it "
                    + (t.stored - t.sendEnd) + " ms after the send returned, the consumer got it " + (arrived - t.stored)
                    + " ms after that)");
        }
    }

    private static void send(DefaultMQProducer producer, String topic, String key, int level, Map<String, Timing> timings)
            throws Exception {
        Message m = new Message(topic, "D", key, ("body of " + key).getBytes(StandardCharsets.UTF_8));
        m.putUserProperty("who", key);
        m.putUserProperty("level", Integer.toString(level));
        if (level > 0) {
            m.setDelayTimeLevel(level);
        }
        Timing t = new Timing(level, System.currentTimeMillis());
        timings.put(key, t);
        SendResult r = producer.send(m);
        t.sendEnd = System.currentTimeMillis();
        Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + key);
    }
}

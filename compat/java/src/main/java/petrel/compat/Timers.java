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

/**
 * Delivery at a chosen moment with the 4.x client, which has no timer API: the message carries
 * the property {@code __STARTDELIVERTIME} (epoch ms), as older SDKs set it.
 */
final class Timers {
    private Timers() {}

    /** How late the broker may store a timer message in its topic. */
    static final long STORED_LATE_MS = 100;

    private static final class Timer {
        final long dueMs;
        volatile String sentMsgId;
        final List<Long> arrivals = Collections.synchronizedList(new ArrayList<>());
        volatile long stored;
        volatile String deliveredMsgId;

        Timer(long dueMs) {
            this.dueMs = dueMs;
        }
    }

    /**
     * Against a live consumer, one message per delay in option {@code delays} (seconds,
     * comma-separated; default 1 to 90 s), each due at send time + its delay by
     * {@code __STARTDELIVERTIME}: each arrives once, with the message id its send returned, its
     * body, tags, keys and user properties; the broker stores it in the topic at or after its
     * time and at most {@link #STORED_LATE_MS} after; the consumer never sees it early and at
     * most {@link Retry#LATE_MS} late.
     */
    static void startDeliverTimeIsExact(Args args) throws Exception {
        String[] delays = args.get("delays", "1,2,5,10,30,60,90").split(",");
        String topic = args.name("TimerTopic");
        DefaultMQProducer producer = Clients.producer(args, args.name("TimerProducer"));
        Map<String, Timer> timers = new ConcurrentHashMap<>();
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        // A message due now creates the topic; once it arrived, the consumer is live.
        send(producer, topic, "warm-up", System.currentTimeMillis(), timers);

        DefaultMQPushConsumer c = Clients.pushConsumer(args, args.name("TimerGroup"));
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            long now = System.currentTimeMillis();
            for (MessageExt m : msgs) {
                String key = String.valueOf(m.getKeys());
                Timer t = timers.get(key);
                String body = new String(m.getBody(), StandardCharsets.UTF_8);
                if (t == null || !("body of " + key).equals(body) || !"T".equals(m.getTags())
                        || !key.equals(m.getUserProperty("who"))) {
                    problems.add("message " + key + ": body <" + body + ">, tags <" + m.getTags() + ">, properties "
                            + m.getProperties());
                } else {
                    t.stored = m.getStoreTimestamp();
                    t.deliveredMsgId = m.getMsgId();
                    t.arrivals.add(now);
                }
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        Clients.waitFor("the message due at once", () -> !timers.get("warm-up").arrivals.isEmpty() || !problems.isEmpty());

        long start = System.currentTimeMillis();
        long last = start;
        for (String d : delays) {
            long due = start + Long.parseLong(d.trim()) * 1000;
            last = Math.max(last, due);
            send(producer, topic, "in-" + d.trim() + "s", due, timers);
        }
        long waitMs = last - System.currentTimeMillis() + Retry.LATE_MS;
        Thread.sleep(Math.max(0, waitMs));
        Clients.waitForEach("every timer message", timers.values(), t -> !t.arrivals.isEmpty(), problems);
        // A second delivery would come soon after the first.
        Thread.sleep(1000);
        c.shutdown();
        producer.shutdown();
        Check.that(problems.isEmpty(), problems.size() + " deliveries differ from what was sent, the first: "
                + problems.subList(0, Math.min(3, problems.size())));

        for (Map.Entry<String, Timer> e : new TreeMap<>(timers).entrySet()) {
            String key = e.getKey();
            Timer t = e.getValue();
            Check.equal(1, t.arrivals.size(), "deliveries of " + key);
            Check.equal(t.sentMsgId, t.deliveredMsgId, "message id of " + key);
            if (key.equals("warm-up")) {
                continue;
            }
            long arrived = t.arrivals.get(0);
            Check.result("stored_late_ms." + key, t.stored - t.dueMs);
            Check.result("consumed_late_ms." + key, arrived - t.dueMs);
            Check.that(t.stored >= t.dueMs, key + " was stored " + (t.dueMs - t.stored) + " ms before its time");
            Check.that(t.stored - t.dueMs <= STORED_LATE_MS, key + " was stored " + (t.stored - t.dueMs)
                    + " ms after its time");
            Check.that(arrived >= t.dueMs, key + " arrived " + (t.dueMs - arrived) + " ms before its time");
            Check.that(arrived - t.dueMs <= Retry.LATE_MS, key + " arrived " + (arrived - t.dueMs) + " ms after its time");
        }
    }

    private static void send(DefaultMQProducer producer, String topic, String key, long dueMs, Map<String, Timer> timers)
            throws Exception {
        Message m = new Message(topic, "T", key, ("body of " + key).getBytes(StandardCharsets.UTF_8));
        m.putUserProperty("who", key);
        m.putUserProperty("__STARTDELIVERTIME", Long.toString(dueMs));
        Timer t = new Timer(dueMs);
        timers.put(key, t);
        SendResult r = producer.send(m);
        Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + key);
        t.sentMsgId = r.getMsgId();
    }
}

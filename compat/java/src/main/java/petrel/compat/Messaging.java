package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/** Sending and consuming with tags, keys and user properties. */
final class Messaging {
    private Messaging() {}

    /**
     * Messages tagged A, B and C, each with a key and user properties (the last one set being a
     * user property, so a broker that glues its own properties onto it corrupts it): consumers
     * subscribed to "A", "A || C" and "*" each get exactly their messages, with tags, keys and
     * properties as sent.
     */
    static void tagSubscriptions(Args args) throws Exception {
        String topic = args.name("TagTopic");
        int perTag = 10;
        String[] tags = {"A", "B", "C"};
        Map<String, Set<String>> want = Map.of(
                "A", keysOf(perTag, "A"),
                "A || C", union(keysOf(perTag, "A"), keysOf(perTag, "C")),
                "*", union(keysOf(perTag, "A"), union(keysOf(perTag, "B"), keysOf(perTag, "C"))));
        DefaultMQProducer producer = Clients.producer(args, args.name("TagProducer"));
        for (String tag : tags) {
            for (int i = 0; i < perTag; i++) {
                Message m = new Message(topic, tag, tag + "-" + i, ("body " + tag + i).getBytes(StandardCharsets.UTF_8));
                m.putUserProperty("color", "blue");
                m.putUserProperty("seq", Integer.toString(i));
                SendResult r = producer.send(m);
                Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + tag + "-" + i);
            }
        }
        List<DefaultMQPushConsumer> consumers = new ArrayList<>();
        Map<String, Set<String>> got = new ConcurrentHashMap<>();
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        int n = 0;
        for (String expr : want.keySet()) {
            Set<String> keys = ConcurrentHashMap.newKeySet();
            got.put(expr, keys);
            DefaultMQPushConsumer c = Clients.pushConsumer(args, args.name("TagGroup" + n++));
            c.subscribe(topic, expr);
            c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                for (MessageExt m : msgs) {
                    String key = m.getKeys();
                    String tag = key.substring(0, key.indexOf('-'));
                    String seq = key.substring(key.indexOf('-') + 1);
                    if (!tag.equals(m.getTags())) {
                        problems.add(expr + ": message " + key + " has tags <" + m.getTags() + ">");
                    }
                    if (!"blue".equals(m.getUserProperty("color")) || !seq.equals(m.getUserProperty("seq"))) {
                        problems.add(expr + ": message " + key + " has properties " + m.getProperties());
                    }
                    String body = new String(m.getBody(), StandardCharsets.UTF_8);
                    if (!body.equals("body " + tag + seq)) {
                        problems.add(expr + ": message " + key + " has body <" + body + ">");
                    }
                    keys.add(key);
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
            c.start();
            consumers.add(c);
        }
        for (Map.Entry<String, Set<String>> e : want.entrySet()) {
            Set<String> keys = got.get(e.getKey());
            Clients.waitFor("subscription " + e.getKey() + " to get " + e.getValue().size() + " messages",
                    () -> keys.size() >= e.getValue().size() || !problems.isEmpty());
        }
        // Anything delivered beyond the wanted set would arrive with the rest; give it a moment.
        Thread.sleep(500);
        Check.that(problems.isEmpty(), problems.size() + " deliveries differ from what was sent, the first: "
                + problems.subList(0, Math.min(3, problems.size())));
        for (Map.Entry<String, Set<String>> e : want.entrySet()) {
            Check.equal(new TreeSet<>(e.getValue()), new TreeSet<>(got.get(e.getKey())), "keys delivered to " + e.getKey());
        }
        consumers.forEach(DefaultMQPushConsumer::shutdown);
        producer.shutdown();
    }

    static Set<String> keysOf(int n, String tag) {
        Set<String> s = new TreeSet<>();
        for (int i = 0; i < n; i++) {
            s.add(tag + "-" + i);
        }
        return s;
    }

    static Set<String> union(Set<String> a, Set<String> b) {
        Set<String> s = new TreeSet<>(a);
        s.addAll(b);
        return s;
    }
}

package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.protocol.heartbeat.MessageModel;

/** Broadcasting consumption: every member of the group gets every message. */
final class Broadcast {
    private Broadcast() {}

    /**
     * Three BROADCASTING consumers of one group, started after half the messages were sent and
     * before the other half: each gets every message exactly once, with body, tags, keys and
     * user properties as sent.
     */
    static void everyMemberGetsEveryMessage(Args args) throws Exception {
        String topic = args.name("BroadcastTopic");
        String group = args.name("BroadcastGroup");
        int members = 3;
        int half = args.getInt("half", 40);
        DefaultMQProducer producer = Retry.producer(args, args.name("BroadcastProducer"));
        for (int i = 0; i < half; i++) {
            send(producer, topic, i);
        }

        List<Map<String, AtomicInteger>> got = new ArrayList<>();
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        List<DefaultMQPushConsumer> consumers = new ArrayList<>();
        for (int n = 0; n < members; n++) {
            Map<String, AtomicInteger> mine = new ConcurrentHashMap<>();
            got.add(mine);
            DefaultMQPushConsumer c = Clients.pushConsumer(args, group);
            c.setMessageModel(MessageModel.BROADCASTING);
            c.subscribe(topic, "*");
            int member = n;
            c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                for (MessageExt m : msgs) {
                    String key = m.getKeys();
                    String body = new String(m.getBody(), StandardCharsets.UTF_8);
                    if (!("body of " + key).equals(body) || !"B".equals(m.getTags())
                            || !key.equals("b-" + m.getUserProperty("n")) || !"x".equals(m.getUserProperty("flavour"))) {
                        problems.add("member " + member + ": message " + key + " has body <" + body + ">, tags <"
                                + m.getTags() + ">, properties " + m.getProperties());
                    }
                    mine.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
            c.start();
            consumers.add(c);
        }
        for (int i = half; i < 2 * half; i++) {
            send(producer, topic, i);
        }
        for (int n = 0; n < members; n++) {
            Map<String, AtomicInteger> mine = got.get(n);
            Clients.waitFor("member " + n + " to get " + 2 * half + " messages",
                    () -> mine.size() >= 2 * half || !problems.isEmpty());
        }
        // A second delivery would come with the rest; give it a moment.
        Thread.sleep(1000);
        Check.that(problems.isEmpty(), problems.size() + " deliveries differ from what was sent, the first: "
                + problems.subList(0, Math.min(3, problems.size())));
        Map<String, Integer> once = new TreeMap<>();
        for (int i = 0; i < 2 * half; i++) {
            once.put("b-" + i, 1);
        }
        for (int n = 0; n < members; n++) {
            Map<String, Integer> counts = new TreeMap<>();
            got.get(n).forEach((k, v) -> counts.put(k, v.get()));
            Check.equal(once, counts, "deliveries per key to member " + n);
        }
        consumers.forEach(DefaultMQPushConsumer::shutdown);
        producer.shutdown();
    }

    private static void send(DefaultMQProducer producer, String topic, int i) throws Exception {
        Message m = new Message(topic, "B", "b-" + i, ("body of b-" + i).getBytes(StandardCharsets.UTF_8));
        m.putUserProperty("n", Integer.toString(i));
        m.putUserProperty("flavour", "x");
        SendResult r = producer.send(m);
        Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of b-" + i);
    }
}

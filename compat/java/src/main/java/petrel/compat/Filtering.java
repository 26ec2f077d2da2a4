package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntPredicate;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.MessageSelector;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/** SQL92 subscriptions (MessageSelector.bySql) with the broker's default settings. */
final class Filtering {
    private Filtering() {}

    private static final String[] B = {"x", "y", "z"};

    private static int a(int i) {
        return i % 10;
    }

    private static String b(int i) {
        return B[i % 3];
    }

    private static boolean hasC(int i) {
        return i % 4 == 0;
    }

    private static String tag(int i) {
        return i % 2 == 0 ? "F" : "G";
    }

    /**
     * Messages {@code f-i} with user properties {@code a = i % 10}, {@code b} one of x, y, z and
     * {@code c} only on every fourth, tagged F or G; one push consumer per expression, each its
     * own group, gets exactly the messages its expression matches (computed here from the same
     * rules), with body and properties as sent. Half the messages are sent before the
     * consumers start, half after.
     */
    static void sqlSelectorsGetExactlyTheMatchingSet(Args args) throws Exception {
        String topic = args.name("SqlTopic");
        int count = args.getInt("count", 60);
        Map<String, IntPredicate> selectors = new LinkedHashMap<>();
        selectors.put("a > 5 AND b = 'x'", i -> a(i) > 5 && b(i).equals("x"));
        selectors.put("c IS NULL", i -> !hasC(i));
        selectors.put("c IS NOT NULL AND a < 5", i -> hasC(i) && a(i) < 5);
        selectors.put("a BETWEEN 3 AND 6", i -> a(i) >= 3 && a(i) <= 6);
        selectors.put("a NOT BETWEEN 3 AND 6", i -> a(i) < 3 || a(i) > 6);
        selectors.put("b IN ('y', 'z')", i -> !b(i).equals("x"));
        selectors.put("b NOT IN ('y', 'z') OR a = 1", i -> b(i).equals("x") || a(i) == 1);
        selectors.put("TAGS = 'F' AND (a >= 7 OR b = 'z')", i -> tag(i).equals("F") && (a(i) >= 7 || b(i).equals("z")));

        DefaultMQProducer producer = Retry.producer(args, args.name("SqlProducer"));
        for (int i = 0; i < count / 2; i++) {
            send(producer, topic, i);
        }
        Map<String, Set<String>> got = new LinkedHashMap<>();
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        List<DefaultMQPushConsumer> consumers = new ArrayList<>();
        int n = 0;
        for (String expr : selectors.keySet()) {
            Set<String> keys = ConcurrentHashMap.newKeySet();
            got.put(expr, keys);
            DefaultMQPushConsumer c = Clients.pushConsumer(args, args.name("SqlGroup" + n++));
            c.subscribe(topic, MessageSelector.bySql(expr));
            c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
                for (MessageExt m : msgs) {
                    String key = String.valueOf(m.getKeys());
                    int i = Integer.parseInt(key.substring(2));
                    String body = new String(m.getBody(), StandardCharsets.UTF_8);
                    if (!body.equals("body of " + key) || !tag(i).equals(m.getTags())
                            || !Integer.toString(a(i)).equals(m.getUserProperty("a")) || !b(i).equals(m.getUserProperty("b"))
                            || !Objects.equals(hasC(i) ? "c" + i : null, m.getUserProperty("c"))) {
                        problems.add(expr + ": message " + key + " has body <" + body + ">, tags <" + m.getTags()
                                + ">, properties " + m.getProperties());
                    }
                    keys.add(key);
                }
                return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            });
            c.start();
            consumers.add(c);
        }
        for (int i = count / 2; i < count; i++) {
            send(producer, topic, i);
        }
        Map<String, Set<String>> want = new LinkedHashMap<>();
        selectors.forEach((expr, p) -> {
            Set<String> keys = new TreeSet<>();
            for (int i = 0; i < count; i++) {
                if (p.test(i)) {
                    keys.add("f-" + i);
                }
            }
            want.put(expr, keys);
        });
        for (String expr : selectors.keySet()) {
            Set<String> keys = got.get(expr);
            int size = want.get(expr).size();
            Check.that(size > 0 && size < count, "the expected set of " + expr + " is neither empty nor everything");
            Clients.waitFor(expr + " to get " + size + " messages", () -> keys.size() >= size || !problems.isEmpty());
        }
        // Anything delivered beyond the matching set would arrive with the rest; give it a moment.
        Thread.sleep(1000);
        Check.that(problems.isEmpty(), problems.size() + " deliveries differ from what was sent, the first: "
                + problems.subList(0, Math.min(3, problems.size())));
        for (String expr : selectors.keySet()) {
            Check.equal(want.get(expr), new TreeSet<>(got.get(expr)), "messages delivered to " + expr);
        }
        consumers.forEach(DefaultMQPushConsumer::shutdown);
        producer.shutdown();
    }

    /**
     * A push consumer subscribed with an SQL92 expression that does not compile fails to start
     * with the broker's SUBSCRIPTION_PARSE_FAILED (23) and a remark naming the group, the topic
     * and the expression: a syntax error, ordering a string, BETWEEN with its bounds swapped.
     */
    static void badSqlFailsConsumerStart(Args args) throws Exception {
        String topic = args.name("BadSqlTopic");
        DefaultMQProducer producer = Retry.producer(args, args.name("BadSqlProducer"));
        // The client checks its SQL92 subscriptions with a broker of the topic's route.
        send(producer, topic, 0);
        String[] bad = {"a >", "b > 'x'", "a BETWEEN 5 AND 1", "a = 1 AND AND b = 'x'"};
        for (int n = 0; n < bad.length; n++) {
            String group = args.name("BadSqlGroup" + n);
            DefaultMQPushConsumer c = Clients.pushConsumer(args, group);
            // The check at start is one request with this timeout (3 s by default); a loaded
            // machine must not turn the broker's refusal into a timeout.
            c.setMqClientApiTimeout(10_000);
            c.subscribe(topic, MessageSelector.bySql(bad[n]));
            c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> ConsumeConcurrentlyStatus.CONSUME_SUCCESS);
            MQClientException failure = null;
            try {
                c.start();
            } catch (MQClientException e) {
                failure = e;
            } finally {
                c.shutdown();
            }
            Check.that(failure != null, "the consumer subscribed with <" + bad[n] + "> started");
            Check.equal(23, failure.getResponseCode(), "response code of the start with <" + bad[n] + ">");
            String remark = failure.getErrorMessage();
            String prefix = "the SQL92 subscription of group " + group + " to topic " + topic + " does not parse: ";
            Check.that(remark != null && remark.startsWith(prefix) && remark.endsWith("(expression: " + bad[n] + ")"),
                    "the start with <" + bad[n] + "> failed with <" + remark + ">");
            Check.result("remark." + n, remark);
        }
        producer.shutdown();
    }

    private static void send(DefaultMQProducer producer, String topic, int i) throws Exception {
        Message m = new Message(topic, tag(i), "f-" + i, ("body of f-" + i).getBytes(StandardCharsets.UTF_8));
        m.putUserProperty("a", Integer.toString(a(i)));
        m.putUserProperty("b", b(i));
        if (hasC(i)) {
            m.putUserProperty("c", "c" + i);
        }
        SendResult r = producer.send(m);
        Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of f-" + i);
    }
}

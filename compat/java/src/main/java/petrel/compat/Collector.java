package petrel.compat;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;

/** Every delivery a push consumer gets, by message key, to check counts and contents after. */
final class Collector {
    final Map<String, List<MessageExt>> byKey = new ConcurrentHashMap<>();
    final AtomicInteger deliveries = new AtomicInteger();
    final DefaultMQPushConsumer consumer;

    private Collector(DefaultMQPushConsumer consumer) {
        this.consumer = consumer;
    }

    /** Starts {@code consumer} (configured, not yet subscribed) on {@code topic} with {@code *}. */
    static Collector start(DefaultMQPushConsumer consumer, String topic) throws Exception {
        Collector c = new Collector(consumer);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                c.byKey.computeIfAbsent(String.valueOf(m.getKeys()), k -> Collections.synchronizedList(new ArrayList<>())).add(m);
                c.deliveries.incrementAndGet();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        return c;
    }

    /** A push consumer of {@code group} from the first offset, collecting {@code topic}. */
    static Collector start(Args args, String group, String topic) throws Exception {
        return start(Clients.pushConsumer(args, group), topic);
    }

    /**
     * Waits until every key of {@code keys} was delivered, then a moment more for anything
     * delivered twice or not sent, and checks that each key came exactly once and nothing else.
     */
    void expectExactlyOnce(Set<String> keys) throws InterruptedException {
        Clients.waitFor(keys.size() + " messages (have " + byKey.size() + " distinct so far)", () -> byKey.keySet().containsAll(keys));
        Thread.sleep(1500);
        Set<String> extra = new TreeSet<>(byKey.keySet());
        extra.removeAll(keys);
        Check.that(extra.isEmpty(), extra.size() + " keys delivered that were not sent, e.g. " + first(extra));
        Map<String, Integer> twice = new TreeMap<>();
        byKey.forEach((k, v) -> {
            if (v.size() != 1) {
                twice.put(k, v.size());
            }
        });
        Check.that(twice.isEmpty(), twice.size() + " keys delivered more than once, e.g. " + first(twice.entrySet()));
        Check.equal(keys.size(), deliveries.get(), "deliveries");
    }

    /** The one delivery of {@code key}. */
    MessageExt only(String key) {
        List<MessageExt> l = byKey.get(key);
        Check.that(l != null && l.size() == 1, "one delivery of " + key + ", got " + (l == null ? 0 : l.size()));
        return l.get(0);
    }

    void shutdown() {
        consumer.shutdown();
    }

    /** The user properties of {@code m}: everything that is not one of RocketMQ's own keys. */
    static Map<String, String> userProperties(MessageExt m) {
        Map<String, String> user = new TreeMap<>(m.getProperties());
        user.keySet().removeIf(MessageConst.STRING_HASH_SET::contains);
        return user;
    }

    private static <T> List<T> first(Iterable<T> items) {
        List<T> l = new ArrayList<>();
        for (T t : items) {
            if (l.size() == 3) {
                break;
            }
            l.add(t);
        }
        return l;
    }
}

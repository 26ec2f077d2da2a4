package petrel.compat5;

import static petrel.compat5.Clients.message;
import static petrel.compat5.Clients.result;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Collectors;
import org.apache.rocketmq.client.apis.consumer.ConsumeResult;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.PushConsumer;
import org.apache.rocketmq.client.apis.producer.Producer;

/** A push consumer: the server assigns its queues, a failed consumption is retried. */
final class Push {
    private Push() {}

    private record Delivery(String id, int index, int attempt) {}

    /** A push consumer gets 100 messages; its listener fails the first delivery of one, which
     * comes back as attempt 2 and is then consumed. */
    static void push(Args a) throws Exception {
        int count = a.getInt("count", 100);
        int failIndex = a.getInt("fail_index", 7);
        List<Delivery> deliveries = new CopyOnWriteArrayList<>();
        try (PushConsumer consumer = Clients.PROVIDER.newPushConsumerBuilder()
                 .setClientConfiguration(Clients.config(a))
                 .setConsumerGroup(a.group())
                 .setSubscriptionExpressions(Map.of(a.topic(), FilterExpression.SUB_ALL))
                 .setMessageListener(m -> {
                     int index = Integer.parseInt(m.getProperties().getOrDefault("index", "-1"));
                     synchronized (deliveries) {
                         deliveries.add(new Delivery(m.getMessageId().toString(), index, m.getDeliveryAttempt()));
                         boolean first = deliveries.stream().filter(d -> d.index() == index).count() == 1;
                         return index == failIndex && first ? ConsumeResult.FAILURE : ConsumeResult.SUCCESS;
                     }
                 })
                 .build();
             Producer p = Clients.producer(a, null)) {
            Set<String> ids = new HashSet<>();
            for (int i = 0; i < count; i++) {
                ids.add(p.send(message(a, "push " + i, "TagA", "push-" + i).addProperty("index", String.valueOf(i)).build())
                    .getMessageId().toString());
            }
            long deadline = System.currentTimeMillis() + a.getInt("seconds", 90) * 1000L;
            while (System.currentTimeMillis() < deadline) {
                Set<String> got = deliveries.stream().map(Delivery::id).collect(Collectors.toSet());
                long failed = deliveries.stream().filter(d -> d.index() == failIndex).count();
                if (got.containsAll(ids) && failed >= 2) {
                    break;
                }
                Thread.sleep(100);
            }
            // A little longer, so a delivery too many would be counted.
            Thread.sleep(3000);
            result("distinct", deliveries.stream().map(Delivery::id).distinct().count());
            result("deliveries", deliveries.size());
            result("failed_attempts", deliveries.stream().filter(d -> d.index() == failIndex)
                .map(d -> String.valueOf(d.attempt())).collect(Collectors.joining(",")));
            result("other_attempts", String.join(",", deliveries.stream().filter(d -> d.index() != failIndex)
                .map(d -> String.valueOf(d.attempt())).collect(Collectors.toCollection(TreeSet::new))));
        }
    }
}

package petrel.compat5;

import static petrel.compat5.Clients.ack;
import static petrel.compat5.Clients.body;
import static petrel.compat5.Clients.message;
import static petrel.compat5.Clients.result;

import java.time.Duration;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.Transaction;
import org.apache.rocketmq.client.apis.producer.TransactionResolution;

/** Transactional messages and the server's check. */
final class Transactions {
    private Transactions() {}

    private record Seen(String label, long at) {}

    /** Three transactions: committed (delivered), rolled back (never delivered), and one left
     * unknown that the server's check (over Telemetry) resolves to commit (delivered then). */
    static void outcomes(Args a) throws Exception {
        List<Seen> checked = new CopyOnWriteArrayList<>();
        try (SimpleConsumer consumer = Clients.simpleConsumer(a, "*");
             Producer p = Clients.producer(a, view -> {
                 String label = body(view);
                 checked.add(new Seen(label, System.currentTimeMillis()));
                 return label.equals("unknown") ? TransactionResolution.COMMIT : TransactionResolution.ROLLBACK;
             })) {
            for (String label : List.of("commit", "rollback", "unknown")) {
                Transaction t = p.beginTransaction();
                p.send(message(a, label, "TagA", "tx-" + label).build(), t);
                if (label.equals("commit")) {
                    t.commit();
                } else if (label.equals("rollback")) {
                    t.rollback();
                }
            }
            List<Seen> received = new CopyOnWriteArrayList<>();
            Predicate<MessageView> take = m -> {
                received.add(new Seen(body(m), System.currentTimeMillis()));
                ack(consumer, m);
                var labels = received.stream().map(Seen::label).collect(Collectors.toSet());
                return labels.contains("commit") && labels.contains("unknown");
            };
            Duration invisible = Duration.ofSeconds(15);
            Clients.receiveFor(consumer, a.getInt("seconds", 60) * 1000L, invisible, take);
            // One more long poll: a rolled-back message would have been delivered long before this.
            Clients.receiveFor(consumer, Clients.AWAIT.toMillis(), invisible, m -> take.test(m) && false);
            result("received", received.stream().map(Seen::label).sorted().collect(Collectors.joining(",")));
            result("checked", String.join(",", checked.stream().map(Seen::label).collect(Collectors.toCollection(TreeSet::new))));
            result("checks", checked.size());
            long unknownAt = received.stream().filter(s -> s.label().equals("unknown")).mapToLong(Seen::at).min().orElse(-1);
            long checkAt = checked.stream().filter(s -> s.label().equals("unknown")).mapToLong(Seen::at).min().orElse(-1);
            result("unknown_delivered_after_check", unknownAt >= 0 && checkAt >= 0 && unknownAt >= checkAt);
        }
    }
}

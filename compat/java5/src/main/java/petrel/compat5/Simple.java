package petrel.compat5;

import static petrel.compat5.Clients.ack;
import static petrel.compat5.Clients.body;
import static petrel.compat5.Clients.corrupted;
import static petrel.compat5.Clients.message;
import static petrel.compat5.Clients.receiveFor;
import static petrel.compat5.Clients.receiveOne;
import static petrel.compat5.Clients.result;

import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.SendReceipt;

/** A producer and a simple consumer: every field across, acks, and a redelivery. */
final class Simple {
    private Simple() {}

    private record Sent(int index, String body) {}

    /** 1,000 messages with tag TagA (plus 100 TagB the consumer must not get), each with its key,
     * user property and body, received and acked by a simple consumer filtering TagA. */
    static void normal(Args a) throws Exception {
        int count = a.getInt("count", 1000);
        Duration invisible = Duration.ofSeconds(a.getInt("invisible", 15));
        try (SimpleConsumer consumer = Clients.simpleConsumer(a, "TagA"); Producer p = Clients.producer(a, null)) {
            Map<String, Sent> expected = new HashMap<>();
            int other = 0;
            for (int i = 0; i < count; i++) {
                String body = "normal " + i + " " + "x".repeat(i % 100);
                SendReceipt r = p.send(message(a, body, "TagA", "key-" + i).addProperty("index", String.valueOf(i)).build());
                expected.put(r.getMessageId().toString(), new Sent(i, body));
                if (i % 10 == 9) {
                    p.send(message(a, "other " + i, "TagB", "other-" + i).build());
                    other++;
                }
            }
            result("sent", expected.size());
            result("sent_other_tag", other);

            Map<String, Integer> seen = new HashMap<>();
            Map<String, Integer> stats = new LinkedHashMap<>();
            for (String k : List.of("received", "mismatched", "other_tag", "unknown", "first_attempt", "not_corrupted", "acked")) {
                stats.put(k, 0);
            }
            int[] wanted = {0};
            receiveFor(consumer, a.getInt("seconds", 90) * 1000L, invisible, m -> {
                stats.merge("received", 1, Integer::sum);
                String id = m.getMessageId().toString();
                Sent want = expected.get(id);
                if (!m.getTag().equals(Optional.of("TagA"))) {
                    stats.merge("other_tag", 1, Integer::sum);
                } else if (want == null) {
                    stats.merge("unknown", 1, Integer::sum);
                } else {
                    boolean same = body(m).equals(want.body())
                        && List.copyOf(m.getKeys()).equals(List.of("key-" + want.index()))
                        && m.getProperties().equals(Map.of("index", String.valueOf(want.index())))
                        && m.getTopic().equals(a.topic());
                    if (!same) {
                        stats.merge("mismatched", 1, Integer::sum);
                        System.out.println("mismatch " + id + ": body=" + body(m) + " tag=" + m.getTag()
                            + " keys=" + m.getKeys() + " properties=" + m.getProperties());
                    }
                }
                if (m.getDeliveryAttempt() == 1) {
                    stats.merge("first_attempt", 1, Integer::sum);
                }
                if (!corrupted(m)) {
                    stats.merge("not_corrupted", 1, Integer::sum);
                }
                if (!seen.containsKey(id) && want != null) {
                    wanted[0]++;
                }
                seen.merge(id, 1, Integer::sum);
                ack(consumer, m);
                stats.merge("acked", 1, Integer::sum);
                return wanted[0] == expected.size();
            });
            result("distinct", seen.size());
            stats.forEach(Clients::result);
        }
    }

    /** One message received and not acked comes back after its invisible time, as attempt 2;
     * acked then, it does not come back. */
    static void redeliver(Args a) throws Exception {
        Duration invisible = Duration.ofSeconds(a.getInt("invisible", 10));
        try (SimpleConsumer consumer = Clients.simpleConsumer(a, "*"); Producer p = Clients.producer(a, null)) {
            String sentId = p.send(message(a, "redeliver me", "TagA", "redeliver-key").build()).getMessageId().toString();
            Clients.Received first = receiveOne(consumer, 30_000, invisible);
            result("first_received", first.message() != null);
            result("first_id_matches", first.message() != null && first.message().getMessageId().toString().equals(sentId));
            result("first_attempt", first.message() != null ? first.message().getDeliveryAttempt() : null);
            Clients.Received second = receiveOne(consumer, invisible.toMillis() + 30_000, invisible);
            long back = System.currentTimeMillis();
            result("second_received", second.message() != null);
            if (second.message() != null) {
                result("second_id_matches", second.message().getMessageId().toString().equals(sentId));
                result("second_attempt", second.message().getDeliveryAttempt());
                result("second_body_matches", body(second.message()).equals("redeliver me"));
                result("redelivered_after_ms", back - first.began());
                consumer.ack(second.message());
                result("acked", true);
                // Long enough for a redelivery had the ack been lost: one more invisible time.
                int[] later = {0};
                receiveFor(consumer, invisible.toMillis() + 3_000, invisible, m -> {
                    later[0]++;
                    return false;
                });
                result("after_ack", later[0]);
            }
        }
    }
}

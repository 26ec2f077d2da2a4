package petrel.compat5;

import static petrel.compat5.Clients.ack;
import static petrel.compat5.Clients.body;
import static petrel.compat5.Clients.message;
import static petrel.compat5.Clients.result;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.producer.Producer;

/** FIFO messages: per message group, delivery in send order. */
final class Fifo {
    private Fifo() {}

    /** 3 message groups x 10 messages, sent interleaved; a consumer of a FIFO group gets each
     * group's messages in the order they were sent. */
    static void fifo(Args a) throws Exception {
        int groups = a.getInt("groups", 3);
        int perGroup = a.getInt("per_group", 10);
        try (SimpleConsumer consumer = Clients.simpleConsumer(a, "*"); Producer p = Clients.producer(a, null)) {
            for (int seq = 0; seq < perGroup; seq++) {
                for (int g = 0; g < groups; g++) {
                    p.send(message(a, "mg" + g + ":" + seq, "TagA", "mg" + g + "-" + seq).setMessageGroup("mg" + g).build());
                }
            }
            Map<String, List<Integer>> order = new TreeMap<>();
            for (int g = 0; g < groups; g++) {
                order.put("mg" + g, new ArrayList<>());
            }
            int[] received = {0};
            int[] groupMismatched = {0};
            Clients.receiveFor(consumer, a.getInt("seconds", 60) * 1000L, Duration.ofSeconds(15), m -> {
                received[0]++;
                String[] parts = body(m).split(":");
                if (!m.getMessageGroup().equals(Optional.of(parts[0]))) {
                    groupMismatched[0]++;
                }
                order.computeIfAbsent(parts[0], k -> new ArrayList<>()).add(Integer.parseInt(parts[1]));
                ack(consumer, m);
                return received[0] >= groups * perGroup;
            });
            // The route says a FIFO topic takes FIFO messages only: the producer itself refuses
            // one without a message group.
            boolean refused;
            try {
                p.send(message(a, "plain", "TagA", "plain-key").build());
                refused = false;
            } catch (Exception e) {
                System.out.println("plain message refused: " + e);
                refused = false;
                for (Throwable t = e; t != null; t = t.getCause()) {
                    refused |= String.valueOf(t.getMessage()).toLowerCase().contains("message type");
                }
            }
            result("plain_refused", refused);
            order.forEach((g, seqs) -> result("order_" + g, seqs.stream().map(String::valueOf).collect(Collectors.joining(","))));
            result("received", received[0]);
            result("group_mismatched", groupMismatched[0]);
        }
    }
}

package petrel.compat5;

import static petrel.compat5.Clients.message;
import static petrel.compat5.Clients.result;

import java.time.Duration;
import java.util.Optional;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.producer.Producer;

/** Delay messages: a delivery timestamp. */
final class Delay {
    private Delay() {}

    /** A message due 3 s from now is not delivered before it is due, and is delivered soon after. */
    static void delay(Args a) throws Exception {
        try (SimpleConsumer consumer = Clients.simpleConsumer(a, "*"); Producer p = Clients.producer(a, null)) {
            long due = System.currentTimeMillis() + a.getInt("delay", 3) * 1000L;
            String sentId = p.send(message(a, "later", "TagA", "delay-key").setDeliveryTimestamp(due).build())
                .getMessageId().toString();
            Clients.Received got = Clients.receiveOne(consumer, 30_000, Duration.ofSeconds(15));
            long at = System.currentTimeMillis();
            result("received", got.message() != null);
            if (got.message() != null) {
                consumer.ack(got.message());
                result("id_matches", got.message().getMessageId().toString().equals(sentId));
                result("delivery_timestamp_matches", got.message().getDeliveryTimestamp().equals(Optional.of(due)));
                result("lateness_ms", at - due);
            }
        }
    }
}

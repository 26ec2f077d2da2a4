package petrel.compat5;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.apache.rocketmq.client.apis.ClientConfiguration;
import org.apache.rocketmq.client.apis.ClientException;
import org.apache.rocketmq.client.apis.ClientServiceProvider;
import org.apache.rocketmq.client.apis.consumer.FilterExpression;
import org.apache.rocketmq.client.apis.consumer.FilterExpressionType;
import org.apache.rocketmq.client.apis.consumer.SimpleConsumer;
import org.apache.rocketmq.client.apis.message.MessageBuilder;
import org.apache.rocketmq.client.apis.message.MessageView;
import org.apache.rocketmq.client.apis.producer.Producer;
import org.apache.rocketmq.client.apis.producer.TransactionChecker;
import org.apache.rocketmq.client.java.message.MessageViewImpl;

/** The clients every scenario starts the same way, and the helpers they share. */
final class Clients {
    static final ClientServiceProvider PROVIDER = ClientServiceProvider.loadService();
    /** Long-polling window of every receive: the Apache proxy's smallest. */
    static final Duration AWAIT = Duration.ofSeconds(5);

    private Clients() {}

    static ClientConfiguration config(Args a) {
        // enableSsl(false): plaintext h2c (the client's default is TLS). No credentials: no ACL here.
        return ClientConfiguration.newBuilder()
            .setEndpoints(a.get("endpoint"))
            .enableSsl(false)
            .setRequestTimeout(Duration.ofSeconds(10))
            .build();
    }

    /** The topic is named up front: start-up fetches its route and waits for the server's settings,
     * and the settings name it, which is how a transaction check finds the producer. */
    static Producer producer(Args a, TransactionChecker checker) throws ClientException {
        var b = PROVIDER.newProducerBuilder().setClientConfiguration(config(a)).setTopics(a.topic());
        if (checker != null) {
            b.setTransactionChecker(checker);
        }
        return b.build();
    }

    static SimpleConsumer simpleConsumer(Args a, String tag) throws ClientException {
        return PROVIDER.newSimpleConsumerBuilder()
            .setClientConfiguration(config(a))
            .setConsumerGroup(a.group())
            .setAwaitDuration(AWAIT)
            .setSubscriptionExpressions(Map.of(a.topic(), new FilterExpression(tag, FilterExpressionType.TAG)))
            .build();
    }

    static MessageBuilder message(Args a, String body, String tag, String key) {
        return PROVIDER.newMessageBuilder()
            .setTopic(a.topic())
            .setBody(body.getBytes(StandardCharsets.UTF_8))
            .setTag(tag)
            .setKeys(key);
    }

    static String body(MessageView m) {
        ByteBuffer b = m.getBody();
        byte[] bytes = new byte[b.remaining()];
        b.get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** The client keeps no body digest on a message, only whether its digest matched; the
     * view it hands out is its own MessageViewImpl. */
    static boolean corrupted(MessageView m) {
        return ((MessageViewImpl) m).isCorrupted();
    }

    static void result(String key, Object value) {
        System.out.println("RESULT " + key + "=" + value);
    }

    /** Receives (handing each message to {@code onMessage}) until {@code seconds} pass or
     * {@code onMessage} returns true. */
    static void receiveFor(SimpleConsumer c, long millis, Duration invisible, Predicate<MessageView> onMessage)
        throws ClientException {
        long deadline = System.currentTimeMillis() + millis;
        while (System.currentTimeMillis() < deadline) {
            for (MessageView m : c.receive(32, invisible)) {
                if (onMessage.test(m)) {
                    return;
                }
            }
        }
    }

    /** The first message received within {@code millis}, and when the receive that got it began. */
    record Received(MessageView message, long began) {}

    static Received receiveOne(SimpleConsumer c, long millis, Duration invisible) throws ClientException {
        long deadline = System.currentTimeMillis() + millis;
        while (System.currentTimeMillis() < deadline) {
            long began = System.currentTimeMillis();
            List<MessageView> got = c.receive(1, invisible);
            if (!got.isEmpty()) {
                return new Received(got.get(0), began);
            }
        }
        return new Received(null, 0);
    }

    /** {@code SimpleConsumer.ack} inside a lambda. */
    static void ack(SimpleConsumer c, MessageView m) {
        try {
            c.ack(m);
        } catch (ClientException e) {
            throw new IllegalStateException("ack " + m.getMessageId(), e);
        }
    }
}

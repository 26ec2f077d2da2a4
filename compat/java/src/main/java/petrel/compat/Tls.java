package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * TLS with the official client: {@code setUseTLS(true)} on a producer and a push consumer, which
 * then speak TLS to the name server and the broker alike. 4.9.8's default
 * {@code tls.test.mode.enable=true} trusts any certificate, so Petrel's self-signed one does.
 */
final class Tls {
    private Tls() {}

    /** A started producer of {@code group} with TLS on or off. */
    private static DefaultMQProducer producer(Args args, String group, boolean tls) throws Exception {
        DefaultMQProducer p = new DefaultMQProducer(group);
        p.setNamesrvAddr(args.namesrv());
        p.setInstanceName(group + "_" + System.nanoTime());
        p.setVipChannelEnabled(false);
        p.setUseTLS(tls);
        p.setSendMsgTimeout(5_000);
        p.start();
        return p;
    }

    /** Sends {@code n} messages keyed {@code prefix + i}, each body naming its key, into {@code sent}. */
    private static void sendAll(DefaultMQProducer p, String topic, String prefix, int n, Map<String, String> sent) throws Exception {
        for (int i = 0; i < n; i++) {
            String key = prefix + i;
            String body = "body of " + key + " " + "x".repeat(i % 50);
            SendResult r = p.send(new Message(topic, "TagA", key, body.getBytes(StandardCharsets.UTF_8)));
            Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + key);
            sent.put(key, body);
        }
    }

    /**
     * A TLS producer sends {@code messages} and a TLS push consumer gets each exactly once with
     * its body. {@code plaintext=served}: a plaintext producer's messages on the same ports
     * arrive too (permissive); {@code plaintext=refused}: a plaintext producer cannot send at
     * all (enforcing), so the TLS clients' traffic cannot have been in the clear.
     */
    static void sendAndConsume(Args args) throws Exception {
        String topic = args.name("TlsTopic");
        int n = args.getInt("messages", 100);
        String plaintext = args.get("plaintext");
        Map<String, String> sent = new LinkedHashMap<>();
        DefaultMQProducer producer = producer(args, args.name("TlsProducer"), true);
        sendAll(producer, topic, "tls-", n, sent);

        DefaultMQProducer plain = producer(args, args.name("PlainProducer"), false);
        plain.setRetryTimesWhenSendFailed(0);
        switch (plaintext) {
            case "served":
                sendAll(plain, topic, "plain-", n, sent);
                break;
            case "refused":
                try {
                    plain.send(new Message(topic, "TagA", "plain-refused", new byte[] {1}));
                    throw new AssertionError("a plaintext send went through a TLS-only Petrel");
                } catch (Exception e) {
                    Check.result("plaintextRefusedWith", e.getClass().getSimpleName());
                }
                break;
            default:
                throw new IllegalArgumentException("plaintext=served|refused, got " + plaintext);
        }
        plain.shutdown();

        DefaultMQPushConsumer consumer = Clients.pushConsumer(args, args.name("TlsGroup"));
        consumer.setUseTLS(true);
        Collector got = Collector.start(consumer, topic);
        got.expectExactlyOnce(sent.keySet());
        for (Map.Entry<String, String> e : sent.entrySet()) {
            MessageExt m = got.only(e.getKey());
            Check.equal(e.getValue(), new String(m.getBody(), StandardCharsets.UTF_8), "body of " + e.getKey());
            Check.equal("TagA", m.getTags(), "tag of " + e.getKey());
        }
        Check.result("sent", sent.size());
        Check.result("received", got.deliveries.get());
        got.shutdown();
        producer.shutdown();
    }
}

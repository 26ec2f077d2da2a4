package petrel.compat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;

/**
 * Live clients for {@code mqadmin} to look at: the commands that show connections, a group's
 * running state or resets tell real clients something, so a producer and a push consumer must
 * be online while the cargo test runs mqadmin.
 */
final class AdminClients {
    private AdminClients() {}

    /**
     * Starts a producer of {@code producerGroup}, sends {@code count} messages to {@code topic}
     * (tag {@code TagA}, key {@code key-i}, body {@code body-i}) and prints
     * {@code RESULT sent.i=<msgId> <offsetMsgId> <queueId> <queueOffset>} for each; then starts
     * a push consumer of {@code consumerGroup} on the topic, waits until it has every message,
     * prints {@code READY} and keeps both clients online until standard input closes. Every
     * delivery is printed as {@code CONSUMED <body>} as it happens, so the test sees a reset's
     * redeliveries.
     */
    static void liveProducerAndConsumer(Args args) throws Exception {
        String topic = args.get("topic");
        int count = args.getInt("count", 8);
        DefaultMQProducer producer = Clients.producer(args, args.get("producerGroup"));
        // A cold JVM's first send can pass the default 3 s on a loaded machine.
        producer.setSendMsgTimeout(15_000);
        for (int i = 0; i < count; i++) {
            Message m = new Message(topic, "TagA", "key-" + i, ("body-" + i).getBytes(StandardCharsets.UTF_8));
            SendResult r = producer.send(m);
            Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of message " + i);
            Check.result("sent." + i, r.getMsgId() + " " + r.getOffsetMsgId() + " "
                    + r.getMessageQueue().getQueueId() + " " + r.getQueueOffset());
        }
        AtomicInteger consumed = new AtomicInteger();
        DefaultMQPushConsumer consumer = Clients.pushConsumer(args, args.get("consumerGroup"));
        // Commit offsets every second instead of every 5 s, so consumerProgress catches up soon.
        consumer.setPersistConsumerOffsetInterval(1000);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                synchronized (System.out) {
                    System.out.println("CONSUMED " + new String(m.getBody(), StandardCharsets.UTF_8));
                    System.out.flush();
                }
                consumed.incrementAndGet();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        Clients.waitFor("the consumer to get all " + count + " messages", () -> consumed.get() >= count);
        synchronized (System.out) {
            System.out.println("READY");
            System.out.flush();
        }
        drain(System.in);
        consumer.shutdown();
        producer.shutdown();
    }

    private static void drain(InputStream in) throws IOException {
        byte[] buf = new byte[256];
        while (in.read(buf) >= 0) {
            // Only the end of input matters.
        }
    }
}

package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.consumer.store.ReadOffsetType;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.topic.TopicValidator;

/**
 * Message trace. The scenarios only send and consume and print the ids; the cargo test then
 * reads the message's path with Petrel's admin client and checks it step by step.
 */
final class Trace {
    private Trace() {}

    /**
     * A producer and a push consumer with the client's message trace on ({@code
     * enableMsgTrace}, the default trace topic RMQ_SYS_TRACE_TOPIC) send and consume one
     * message. Both are shut down before the scenario ends, which flushes their trace and
     * commits the consumer's offset. Prints {@code msgId}, {@code offsetMsgId} and the
     * consumer's {@code clientId}.
     */
    static void clientTraced(Args args) throws Exception {
        String topic = args.name("TraceTopic");
        String group = args.name("TraceGroup");
        DefaultMQProducer p = new DefaultMQProducer(args.name("TraceProducer"), true);
        p.setNamesrvAddr(args.namesrv());
        p.setInstanceName("trace-producer-" + System.nanoTime());
        p.setVipChannelEnabled(false);
        p.start();
        SendResult sent = p.send(new Message(topic, "TagT", "trace-key", "traced body".getBytes(StandardCharsets.UTF_8)));
        Check.equal(SendStatus.SEND_OK, sent.getSendStatus(), "send status");

        DefaultMQPushConsumer c = new DefaultMQPushConsumer(group, true);
        c.setNamesrvAddr(args.namesrv());
        c.setInstanceName("trace-consumer-" + System.nanoTime());
        c.setVipChannelEnabled(false);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(topic, "*");
        List<String> got = Collections.synchronizedList(new ArrayList<>());
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                got.add(m.getMsgId());
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        c.start();
        Clients.waitFor("the traced message to be consumed", () -> got.contains(sent.getMsgId()));
        // The listener sees the message before the client moves its offset past it; shutting
        // down in between would persist no offset, and the broker would trace no commit.
        Clients.waitFor("the consumer's offset to pass the message", () -> c.getDefaultMQPushConsumerImpl()
                .getOffsetStore()
                .readOffset(sent.getMessageQueue(), ReadOffsetType.READ_FROM_MEMORY) > sent.getQueueOffset());
        // The client sends its trace in the background and, at shutdown, gives up on what is
        // left after 500 ms; on a loaded machine that lost the consumer's records. So the
        // scenario waits until they are stored.
        Clients.waitFor("the consumer's trace records to be stored", () -> consumerTraced(p, sent.getMsgId()));
        String clientId = c.buildMQClientId();
        c.shutdown();
        p.shutdown();
        Check.equal(List.of(sent.getMsgId()), got, "deliveries");
        Check.result("msgId", sent.getMsgId());
        Check.result("offsetMsgId", sent.getOffsetMsgId());
        Check.result("clientId", clientId);
    }

    /** Whether the trace topic holds both the SubBefore and the SubAfter record of {@code msgId}. */
    private static boolean consumerTraced(DefaultMQProducer p, String msgId) {
        try {
            String bodies = p.queryMessage(TopicValidator.RMQ_SYS_TRACE_TOPIC, msgId, 32, 0, Long.MAX_VALUE)
                    .getMessageList()
                    .stream()
                    .map(m -> new String(m.getBody(), StandardCharsets.UTF_8))
                    .collect(Collectors.joining());
            return bodies.contains("SubBefore") && bodies.contains("SubAfter");
        } catch (Exception notYet) {
            return false;
        }
    }

    /**
     * Client trace off. A push consumer with maxReconsumeTimes 1 consumes {@code ok} and
     * answers RECONSUME_LATER to every delivery of {@code poison}, which is so delivered twice
     * (reconsumeTimes 0 and 1) and then dead-lettered by the broker. The consumer is shut down
     * (committing its offsets) a little after the second failure. Prints {@code okId}, {@code
     * poisonId} and the consumer's {@code clientId}.
     */
    static void brokerTraced(Args args) throws Exception {
        System.setProperty("rocketmq.client.rebalance.waitInterval", "1000");
        String topic = args.name("BrokerTraceTopic");
        String group = args.name("BrokerTraceGroup");
        DefaultMQProducer p = Clients.producer(args, args.name("BrokerTraceProducer"));
        SendResult ok = p.send(new Message(topic, "TagT", "ok", "fine".getBytes(StandardCharsets.UTF_8)));
        SendResult poison = p.send(new Message(topic, "TagT", "poison", "fails".getBytes(StandardCharsets.UTF_8)));
        Check.equal(SendStatus.SEND_OK, ok.getSendStatus(), "send status");
        Check.equal(SendStatus.SEND_OK, poison.getSendStatus(), "send status");

        Map<String, AtomicInteger> deliveries = new ConcurrentHashMap<>();
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        DefaultMQPushConsumer c = Clients.pushConsumer(args, group);
        c.setMaxReconsumeTimes(1);
        c.setPollNameServerInterval(1000);
        c.subscribe(topic, "*");
        c.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            ConsumeConcurrentlyStatus status = ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            for (MessageExt m : msgs) {
                int n = deliveries.computeIfAbsent(m.getKeys(), k -> new AtomicInteger()).incrementAndGet();
                if ("poison".equals(m.getKeys())) {
                    if (m.getReconsumeTimes() != n - 1) {
                        problems.add("poison delivery " + n + " came with reconsumeTimes " + m.getReconsumeTimes());
                    }
                    status = ConsumeConcurrentlyStatus.RECONSUME_LATER;
                }
            }
            return status;
        });
        c.start();
        Clients.waitFor("poison delivered twice", () -> !problems.isEmpty()
                || deliveries.getOrDefault("poison", new AtomicInteger()).get() >= 2);
        // The second failure's send-back, and no third delivery.
        Thread.sleep(2000);
        String clientId = c.buildMQClientId();
        c.shutdown();
        p.shutdown();
        Check.equal(List.of(), problems, "problems");
        Check.equal(1, deliveries.get("ok").get(), "deliveries of ok");
        Check.equal(2, deliveries.get("poison").get(), "deliveries of poison");
        Check.result("okId", ok.getMsgId());
        Check.result("poisonId", poison.getMsgId());
        Check.result("clientId", clientId);
    }
}

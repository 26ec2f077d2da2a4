package petrel.compat5r;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.remoting.protocol.admin.ConsumeStats;
import org.apache.rocketmq.remoting.protocol.admin.OffsetWrapper;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.remoting.protocol.RequestCode;
import org.apache.rocketmq.remoting.protocol.ResponseCode;
import org.apache.rocketmq.common.message.MessageRequestMode;
import org.apache.rocketmq.remoting.protocol.subscription.SubscriptionGroupConfig;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

/**
 * POP consumption by the 5.x remoting push consumer: the operator switches the group to POP on
 * the broker (what {@code mqadmin setConsumeMode -m POP} sends), and a
 * {@code DefaultMQPushConsumer} with {@code clientRebalance = false} then asks the broker for
 * its queues (QUERY_ASSIGNMENT), pops them (POP_MESSAGE), acks what it consumed (ACK_MESSAGE)
 * and hands a failed message back for later (CHANGE_MESSAGE_INVISIBLETIME).
 */
final class Pop {
    private Pop() {}

    /**
     * The client waits this long before a message its listener returned RECONSUME_LATER for
     * comes back: the first step of its POP retry delays (DefaultMQPushConsumerImpl's
     * popDelayLevel, 10 s, 30 s, 1 min, ...; the 4.x delay levels do not apply), sent as the
     * new invisible time.
     */
    static final long FIRST_POP_RETRY_DELAY_MS = 10_000;

    /**
     * 100 messages (keys k0..k99) sent by a 5.x producer reach a POP push consumer subscribed to
     * "*": every one once, except k7, whose first delivery the listener fails
     * (RECONSUME_LATER): it comes back once, {@link #FIRST_POP_RETRY_DELAY_MS} later, with
     * reconsumeTimes 1. Every delivery carries the client's POP receipt, the topic is never
     * pulled, and when all is acked the group's offsets have reached the end of every queue.
     */
    static void push(Args args) throws Exception {
        String topic = args.get("topic");
        String group = args.get("group");
        int count = args.getInt("count", 100);
        String failKey = "k7";

        DefaultMQAdminExt admin = Clients.admin(args);
        String brokerAddr = switchToPop(admin, topic, group);

        DefaultMQProducer producer = Clients.producer(args, group + "_producer");
        for (int i = 0; i < count; i++) {
            send(producer, topic, "k" + i, "TagA");
        }

        Map<String, List<Integer>> reconsumeTimes = new ConcurrentHashMap<>();
        Map<String, List<Long>> deliveredAt = new ConcurrentHashMap<>();
        List<String> problems = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger deliveries = new AtomicInteger();
        AtomicInteger withReceipt = new AtomicInteger();
        Wire wire = new Wire(topic);
        DefaultMQPushConsumer consumer = Clients.popConsumer(args, group, wire);
        consumer.subscribe(topic, "*");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            ConsumeConcurrentlyStatus status = ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
            for (MessageExt m : msgs) {
                deliveries.incrementAndGet();
                String key = m.getKeys();
                if (!topic.equals(m.getTopic())) {
                    problems.add("message " + key + " arrived with topic " + m.getTopic());
                }
                String body = new String(m.getBody(), StandardCharsets.UTF_8);
                if (!body.equals("body-" + key)) {
                    problems.add("message " + key + " arrived with body " + body);
                }
                if (m.getProperty(MessageConst.PROPERTY_POP_CK) != null) {
                    withReceipt.incrementAndGet();
                }
                List<Integer> times = reconsumeTimes.computeIfAbsent(key, k -> Collections.synchronizedList(new ArrayList<>()));
                times.add(m.getReconsumeTimes());
                deliveredAt.computeIfAbsent(key, k -> Collections.synchronizedList(new ArrayList<>())).add(System.currentTimeMillis());
                if (key.equals(failKey) && times.size() == 1) {
                    status = ConsumeConcurrentlyStatus.RECONSUME_LATER;
                }
            }
            return status;
        });
        consumer.start();

        Clients.waitFor(count + " keys and the retry of " + failKey,
            Clients.WAIT.plusMillis(FIRST_POP_RETRY_DELAY_MS),
            () -> !problems.isEmpty()
                || (reconsumeTimes.size() >= count && reconsumeTimes.getOrDefault(failKey, List.of()).size() >= 2));
        // Every ack answered, and the broker's offsets at the end of every queue: nothing of the
        // group is left in flight.
        Clients.waitFor("the " + count + " acks", () -> wire.answers(RequestCode.ACK_MESSAGE, ResponseCode.SUCCESS) >= count);
        Clients.waitFor("the group's offsets to reach the end of the topic", () -> lag(admin, group, topic) == 0);
        // Anything delivered twice that should not have been would show by now (the client acks
        // within milliseconds; nothing is invisible any more).
        Thread.sleep(1_000);
        consumer.shutdown();
        producer.shutdown();

        if (!problems.isEmpty()) {
            throw new AssertionError(problems.size() + " problems, first: " + problems.get(0));
        }
        List<String> redelivered = new ArrayList<>();
        for (Map.Entry<String, List<Integer>> e : new TreeMap<>(reconsumeTimes).entrySet()) {
            if (e.getValue().size() > 1) {
                redelivered.add(e.getKey());
            }
        }
        List<Integer> failTimes = reconsumeTimes.get(failKey);
        List<Long> failAt = deliveredAt.get(failKey);
        long retryAfter = failAt.get(1) - failAt.get(0);

        System.out.println("RESULT broker=" + brokerAddr);
        System.out.println("RESULT distinct_keys=" + reconsumeTimes.size());
        System.out.println("RESULT deliveries=" + deliveries.get());
        System.out.println("RESULT redelivered_keys=" + String.join(",", redelivered));
        System.out.println("RESULT k7_deliveries=" + failTimes.size());
        System.out.println("RESULT k7_reconsume_times=" + join(failTimes));
        System.out.println("RESULT k7_retry_after_ms=" + retryAfter);
        System.out.println("RESULT k7_retry_waited_the_pop_delay=" + (retryAfter >= FIRST_POP_RETRY_DELAY_MS - 500));
        System.out.println("RESULT deliveries_with_pop_receipt=" + withReceipt.get());
        System.out.println("RESULT pull_requests=" + wire.requests(RequestCode.PULL_MESSAGE));
        System.out.println("RESULT offset_commits=" + wire.requests(RequestCode.UPDATE_CONSUMER_OFFSET));
        System.out.println("RESULT pop_found=" + (wire.answers(RequestCode.POP_MESSAGE, ResponseCode.SUCCESS) > 0));
        System.out.println("RESULT acks_ok=" + wire.answers(RequestCode.ACK_MESSAGE, ResponseCode.SUCCESS));
        System.out.println("RESULT acks=" + wire.requests(RequestCode.ACK_MESSAGE));
        System.out.println("RESULT change_invisible_ok=" + wire.answers(RequestCode.CHANGE_MESSAGE_INVISIBLETIME, ResponseCode.SUCCESS));
        System.out.println("RESULT change_invisible=" + wire.requests(RequestCode.CHANGE_MESSAGE_INVISIBLETIME));
        System.out.println("RESULT lag=" + lag(admin, group, topic));
        System.out.println("RESULT wire=" + wire.answersSeen());
        admin.shutdown();
    }

    /**
     * A topic holding TagA and TagB messages (half sent before the consumer starts, half while
     * it waits in a long poll), popped with the subscription "TagA": the broker hands out
     * exactly the TagA ones (seen in its POP answers, before the client's own tag check), each
     * once, and the group's offsets still reach the end of every queue.
     */
    static void tag(Args args) throws Exception {
        String topic = args.get("topic");
        String group = args.get("group");
        int perTag = args.getInt("perTag", 20);

        DefaultMQAdminExt admin = Clients.admin(args);
        switchToPop(admin, topic, group);
        DefaultMQProducer producer = Clients.producer(args, group + "_producer");
        for (int i = 0; i < perTag / 2; i++) {
            send(producer, topic, "a" + i, "TagA");
            send(producer, topic, "b" + i, "TagB");
        }

        Map<String, AtomicInteger> got = new ConcurrentHashMap<>();
        Map<String, AtomicInteger> tags = new ConcurrentHashMap<>();
        Wire wire = new Wire(topic);
        DefaultMQPushConsumer consumer = Clients.popConsumer(args, group, wire);
        consumer.subscribe(topic, "TagA");
        consumer.registerMessageListener((MessageListenerConcurrently) (msgs, ctx) -> {
            for (MessageExt m : msgs) {
                got.computeIfAbsent(m.getKeys(), k -> new AtomicInteger()).incrementAndGet();
                tags.computeIfAbsent(String.valueOf(m.getTags()), k -> new AtomicInteger()).incrementAndGet();
            }
            return ConsumeConcurrentlyStatus.CONSUME_SUCCESS;
        });
        consumer.start();
        Clients.waitFor("the first " + perTag / 2 + " TagA messages", () -> got.size() >= perTag / 2);
        for (int i = perTag / 2; i < perTag; i++) {
            send(producer, topic, "b" + i, "TagB");
            send(producer, topic, "a" + i, "TagA");
        }
        Clients.waitFor("all " + perTag + " TagA messages", () -> got.size() >= perTag);
        Clients.waitFor("the " + perTag + " acks", () -> wire.answers(RequestCode.ACK_MESSAGE, ResponseCode.SUCCESS) >= perTag);
        Clients.waitFor("the group's offsets to reach the end of the topic", () -> lag(admin, group, topic) == 0);
        Thread.sleep(1_000);
        consumer.shutdown();
        producer.shutdown();

        int twice = 0;
        for (AtomicInteger n : got.values()) {
            twice += n.get() > 1 ? 1 : 0;
        }
        System.out.println("RESULT keys=" + got.size());
        System.out.println("RESULT only_tag_a_keys=" + got.keySet().stream().allMatch(k -> k.startsWith("a")));
        System.out.println("RESULT delivered_twice=" + twice);
        System.out.println("RESULT consumed_tags=" + new TreeMap<>(tags));
        System.out.println("RESULT popped_tags=" + wire.poppedTags());
        System.out.println("RESULT pull_requests=" + wire.requests(RequestCode.PULL_MESSAGE));
        System.out.println("RESULT offset_commits=" + wire.requests(RequestCode.UPDATE_CONSUMER_OFFSET));
        System.out.println("RESULT acks_ok=" + wire.answers(RequestCode.ACK_MESSAGE, ResponseCode.SUCCESS));
        System.out.println("RESULT lag=" + lag(admin, group, topic));
        System.out.println("RESULT wire=" + wire.answersSeen());
        admin.shutdown();
    }

    /**
     * What an operator does on a 5.x broker before a POP consumer starts: create the group
     * ({@code mqadmin updateSubGroup}) and set its request mode for the topic to POP, every
     * consumer popping every queue ({@code mqadmin setConsumeMode -b ... -m POP -q 0}).
     * Returns the broker's address.
     */
    private static String switchToPop(DefaultMQAdminExt admin, String topic, String group) throws Exception {
        String brokerAddr = admin.examineTopicRouteInfo(topic).getBrokerDatas().get(0).selectBrokerAddr();
        SubscriptionGroupConfig config = new SubscriptionGroupConfig();
        config.setGroupName(group);
        admin.createAndUpdateSubscriptionGroupConfig(brokerAddr, config);
        admin.setMessageRequestMode(brokerAddr, topic, group, MessageRequestMode.POP, 0, 5_000);
        return brokerAddr;
    }

    private static void send(DefaultMQProducer producer, String topic, String key, String tag) throws Exception {
        Message m = new Message(topic, tag, key, ("body-" + key).getBytes(StandardCharsets.UTF_8));
        SendResult r = producer.send(m);
        if (r.getSendStatus() != SendStatus.SEND_OK) {
            throw new AssertionError("send " + key + ": " + r);
        }
    }

    /** How far the group's committed offsets are behind the topic's ends, over every queue (admin GET_CONSUME_STATS). */
    private static long lag(DefaultMQAdminExt admin, String group, String topic) {
        try {
            ConsumeStats stats = admin.examineConsumeStats(group, topic);
            long lag = 0;
            for (Map.Entry<MessageQueue, OffsetWrapper> e : stats.getOffsetTable().entrySet()) {
                if (e.getKey().getTopic().equals(topic)) {
                    lag += e.getValue().getBrokerOffset() - Math.max(0, e.getValue().getConsumerOffset());
                }
            }
            return lag;
        } catch (Exception e) {
            return -1;
        }
    }

    private static String join(List<Integer> xs) {
        StringBuilder sb = new StringBuilder();
        for (Integer x : xs) {
            if (sb.length() > 0) {
                sb.append(',');
            }
            sb.append(x);
        }
        return sb.toString();
    }
}

package petrel.compat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.rocketmq.client.consumer.DefaultLitePullConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/** DefaultLitePullConsumer, the 4.x pull API: subscribe (rebalanced) and assign + seek. */
final class LitePull {
    private LitePull() {}

    static DefaultLitePullConsumer consumer(Args args, String group) {
        DefaultLitePullConsumer c = new DefaultLitePullConsumer(group);
        c.setNamesrvAddr(args.namesrv());
        c.setInstanceName(group + "_" + System.nanoTime());
        c.setVipChannelEnabled(false);
        return c;
    }

    /** Sync sends of {@code n} messages; the results by key, in send order. */
    static Map<String, SendResult> sendAll(DefaultMQProducer producer, String topic, String prefix, int n, Map<String, Message> sent) throws Exception {
        Map<String, SendResult> results = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            String key = prefix + i;
            Message m = Sending.message(topic, key);
            SendResult r = producer.send(m);
            Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + key);
            sent.put(key, m);
            results.put(key, r);
        }
        return results;
    }

    /** Polls until {@code want} messages came in all, failing after {@link Clients#WAIT}; then once more to see that nothing follows. */
    static List<MessageExt> pollUntil(DefaultLitePullConsumer c, int want) throws InterruptedException {
        List<MessageExt> got = new ArrayList<>();
        long deadline = System.nanoTime() + Clients.WAIT.toNanos();
        while (got.size() < want) {
            Check.that(System.nanoTime() < deadline, "timed out polling for " + want + " messages, got " + got.size());
            got.addAll(c.poll(500));
        }
        got.addAll(c.poll(1500));
        return got;
    }

    /** Subscribe mode: a new group gets every message of the topic's queues exactly once, as sent. */
    static void subscribe(Args args) throws Exception {
        String topic = args.name("LiteTopic");
        int n = args.getInt("messages", 400);
        DefaultMQProducer producer = Sending.producer(args, args.name("LiteProducer"));
        Map<String, Message> sent = new LinkedHashMap<>();
        Map<String, SendResult> results = sendAll(producer, topic, "lite-", n, sent);
        DefaultLitePullConsumer c = consumer(args, args.name("LiteGroup"));
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        c.subscribe(topic, "*");
        c.start();
        List<MessageExt> got = pollUntil(c, n);
        Map<String, MessageExt> byKey = new TreeMap<>();
        for (MessageExt m : got) {
            Check.that(byKey.put(m.getKeys(), m) == null, "message " + m.getKeys() + " polled twice");
        }
        Check.equal(new TreeMap<>(sent).keySet(), byKey.keySet(), "keys polled");
        for (String key : sent.keySet()) {
            Sending.checkDelivery(args, sent.get(key), results.get(key), byKey.get(key));
        }
        Check.result("queues", c.assignment().size());
        c.shutdown();
        producer.shutdown();
    }

    /**
     * Assign mode: one queue assigned and sought to an offset, poll returns exactly that queue's
     * messages from the offset on, in order; seeking back returns them again from there.
     */
    static void assignAndSeek(Args args) throws Exception {
        String topic = args.name("SeekTopic");
        int n = args.getInt("messages", 200);
        DefaultMQProducer producer = Sending.producer(args, args.name("SeekProducer"));
        Map<String, Message> sent = new LinkedHashMap<>();
        Map<String, SendResult> results = sendAll(producer, topic, "seek-", n, sent);
        // The keys of one queue by queue offset, from what the sends reported.
        MessageQueue queue = results.values().iterator().next().getMessageQueue();
        Map<Long, String> inQueue = new TreeMap<>();
        for (Map.Entry<String, SendResult> e : results.entrySet()) {
            if (e.getValue().getMessageQueue().equals(queue)) {
                inQueue.put(e.getValue().getQueueOffset(), e.getKey());
            }
        }
        int size = inQueue.size();
        Check.that(size >= 20, "at least 20 messages in " + queue + ", got " + size);

        DefaultLitePullConsumer c = consumer(args, args.name("SeekGroup"));
        c.setAutoCommit(false);
        c.start();
        List<MessageQueue> queues = new ArrayList<>(c.fetchMessageQueues(topic));
        Check.that(queues.contains(queue), "fetchMessageQueues " + queues + " has " + queue);
        c.assign(Collections.singletonList(queue));
        for (long from : new long[] {size / 2, 3, size}) {
            c.seek(queue, from);
            List<MessageExt> got = pollUntil(c, (int) (size - from));
            List<Long> offsets = new ArrayList<>();
            for (MessageExt m : got) {
                offsets.add(m.getQueueOffset());
            }
            List<Long> want = new ArrayList<>();
            for (long o = from; o < size; o++) {
                want.add(o);
            }
            Check.equal(want, offsets, "queue offsets polled after seek(" + from + ")");
            for (MessageExt m : got) {
                String key = inQueue.get(m.getQueueOffset());
                Check.equal(queue.getQueueId(), m.getQueueId(), "queue of " + key);
                Sending.checkDelivery(args, sent.get(key), results.get(key), m);
            }
        }
        Check.that(Arrays.asList(c.assignment().toArray()).equals(List.of(queue)), "assignment " + c.assignment());
        Check.result("queue_size", size);
        c.shutdown();
        producer.shutdown();
    }
}

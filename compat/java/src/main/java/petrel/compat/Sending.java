package petrel.compat;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageClientIDSetter;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageId;
import org.apache.rocketmq.common.message.MessageQueue;

/** The producer's four ways of sending, each read back by a push consumer and compared. */
final class Sending {
    /** An offsetMsgId of an IPv4 store host: 16 bytes in upper-case hex (reference §4.7). */
    static final Pattern ID = Pattern.compile("[0-9A-F]{32}");
    /** A UNIQ_KEY: 16 bytes, or 28 when the producer's own address is IPv6 (reference §4.7). */
    static final Pattern UNIQ_ID = Pattern.compile("[0-9A-F]{32}|[0-9A-F]{56}");

    private Sending() {}

    /**
     * {@link Clients#producer} whose sync sends wait 15 s instead of 3: these scenarios check
     * what a send returns, not how fast, and the machine may be busy with other tests.
     */
    static DefaultMQProducer producer(Args args, String group) throws Exception {
        DefaultMQProducer p = Clients.producer(args, group);
        p.setSendMsgTimeout(15_000);
        return p;
    }

    /**
     * Sync sends of bodies from 1 byte to 64 KiB (above the client's 4 KiB compression
     * threshold): every result is SEND_OK with a well-formed msgId (the message's UNIQ_KEY) and
     * offsetMsgId (this broker's address and a commit-log offset growing with each send), queue
     * offsets 0, 1, 2... per queue; a consumer then gets each message once with its exact body,
     * tags, ids, queue and offset.
     */
    static void syncSend(Args args) throws Exception {
        String topic = args.name("SyncTopic");
        int n = args.getInt("messages", 300);
        DefaultMQProducer producer = producer(args, args.name("SyncProducer"));
        Random random = new Random(7);
        Map<String, Message> sent = new LinkedHashMap<>();
        Map<String, SendResult> results = new LinkedHashMap<>();
        Map<Integer, List<Long>> offsetsByQueue = new TreeMap<>();
        long lastCommitLogOffset = -1;
        for (int i = 0; i < n; i++) {
            String key = "sync-" + i;
            byte[] body = new byte[i % 40 == 3 ? 64 * 1024 + i : 1 + random.nextInt(3000)];
            random.nextBytes(body);
            Message m = new Message(topic, "T" + (i % 3), key, body);
            SendResult r = producer.send(m);
            Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + key);
            Check.equal(MessageClientIDSetter.getUniqID(m), r.getMsgId(), "msgId of " + key + " (its UNIQ_KEY)");
            Check.that(UNIQ_ID.matcher(r.getMsgId()).matches(), "msgId of " + key + " is 32 or 56 upper-case hex digits: " + r.getMsgId());
            long offset = checkOffsetMsgId(args, r.getOffsetMsgId(), key);
            Check.that(offset > lastCommitLogOffset, "commit-log offset of " + key + " (" + offset + ") after the previous one (" + lastCommitLogOffset + ")");
            lastCommitLogOffset = offset;
            Check.equal(topic, r.getMessageQueue().getTopic(), "topic of the queue of " + key);
            offsetsByQueue.computeIfAbsent(r.getMessageQueue().getQueueId(), q -> new ArrayList<>()).add(r.getQueueOffset());
            sent.put(key, m);
            results.put(key, r);
        }
        for (Map.Entry<Integer, List<Long>> e : offsetsByQueue.entrySet()) {
            List<Long> want = new ArrayList<>();
            for (long o = 0; o < e.getValue().size(); o++) {
                want.add(o);
            }
            Check.equal(want, e.getValue(), "queue offsets of queue " + e.getKey() + " in send order");
        }
        Check.result("queues", offsetsByQueue.size());

        Collector got = Collector.start(args, args.name("SyncGroup"), topic);
        got.expectExactlyOnce(sent.keySet());
        for (String key : sent.keySet()) {
            checkDelivery(args, sent.get(key), results.get(key), got.only(key));
        }
        got.shutdown();
        producer.shutdown();
    }

    /**
     * 2,000 asynchronous sends all in flight at once: every callback reports SEND_OK with
     * distinct ids, and a push consumer gets every message exactly once.
     */
    static void asyncSend(Args args) throws Exception {
        String topic = args.name("AsyncTopic");
        int n = args.getInt("messages", 2000);
        DefaultMQProducer producer = producer(args, args.name("AsyncProducer"));
        // A send's timeout counts from its submission, and all of them are submitted at once on a
        // machine that may be busy with other tests: give the last of them room.
        producer.setSendMsgTimeout(30_000);
        // The topic is created by its first message; sending that one first keeps 1,999 others
        // from each asking the name server for a route that does not exist yet.
        Map<String, Message> sent = new ConcurrentHashMap<>();
        Message first = message(topic, "async-0");
        Check.equal(SendStatus.SEND_OK, producer.send(first).getSendStatus(), "status of the first send");
        sent.put("async-0", first);
        Map<String, SendResult> results = new ConcurrentHashMap<>();
        List<String> failures = Collections.synchronizedList(new ArrayList<>());
        CountDownLatch done = new CountDownLatch(n - 1);
        for (int i = 1; i < n; i++) {
            String key = "async-" + i;
            Message m = message(topic, key);
            sent.put(key, m);
            producer.send(m, new SendCallback() {
                @Override
                public void onSuccess(SendResult r) {
                    results.put(key, r);
                    done.countDown();
                }

                @Override
                public void onException(Throwable e) {
                    failures.add(key + ": " + e);
                    done.countDown();
                }
            });
        }
        Check.that(done.await(Clients.WAIT.toMillis(), TimeUnit.MILLISECONDS), "all callbacks within " + Clients.WAIT + ", " + done.getCount() + " missing");
        Check.that(failures.isEmpty(), failures.size() + " async sends failed, the first: " + failures.subList(0, Math.min(3, failures.size())));
        Check.equal(n - 1, results.size(), "successful callbacks");
        Map<String, String> offsetIds = new TreeMap<>();
        for (Map.Entry<String, SendResult> e : results.entrySet()) {
            SendResult r = e.getValue();
            Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "status of " + e.getKey());
            Check.equal(MessageClientIDSetter.getUniqID(sent.get(e.getKey())), r.getMsgId(), "msgId of " + e.getKey());
            checkOffsetMsgId(args, r.getOffsetMsgId(), e.getKey());
            String before = offsetIds.put(r.getOffsetMsgId(), e.getKey());
            Check.that(before == null, "offsetMsgId " + r.getOffsetMsgId() + " given to both " + before + " and " + e.getKey());
        }
        Collector got = Collector.start(args, args.name("AsyncGroup"), topic);
        got.expectExactlyOnce(sent.keySet());
        for (Map.Entry<String, SendResult> e : results.entrySet()) {
            MessageExt m = got.only(e.getKey());
            Check.equal(e.getValue().getOffsetMsgId(), offsetMsgId(m), "offsetMsgId delivered for " + e.getKey());
            Check.equal("body of " + e.getKey(), new String(m.getBody(), StandardCharsets.UTF_8), "body of " + e.getKey());
        }
        Check.result("consumed", got.deliveries.get());
        got.shutdown();
        producer.shutdown();
    }

    /** One-way sends (no response at all): every one of them arrives, once. */
    static void onewaySend(Args args) throws Exception {
        String topic = args.name("OnewayTopic");
        int n = args.getInt("messages", 500);
        DefaultMQProducer producer = producer(args, args.name("OnewayProducer"));
        Map<String, Message> sent = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            String key = "oneway-" + i;
            Message m = message(topic, key);
            producer.sendOneway(m);
            sent.put(key, m);
        }
        Collector got = Collector.start(args, args.name("OnewayGroup"), topic);
        got.expectExactlyOnce(sent.keySet());
        for (String key : sent.keySet()) {
            Check.equal("body of " + key, new String(got.only(key).getBody(), StandardCharsets.UTF_8), "body of " + key);
        }
        Check.result("consumed", got.deliveries.get());
        got.shutdown();
        producer.shutdown();
    }

    /**
     * Two batches of 16 (the second to the first's queue): one SendResult each, whose msgId is
     * the messages' UNIQ_KEYs and offsetMsgId their commit-log ids, comma-joined in order (§4.8),
     * queue offsets consecutive from the result's; every message is consumed once with its own
     * tags, keys, user properties and body, and no property of another message or of the batch.
     */
    static void batchSend(Args args) throws Exception {
        String topic = args.name("BatchTopic");
        int size = 16;
        DefaultMQProducer producer = producer(args, args.name("BatchProducer"));
        List<Message> firstBatch = batch(topic, 0, size);
        SendResult first = producer.send(firstBatch);
        checkBatchResult(args, firstBatch, first);
        MessageQueue queue = first.getMessageQueue();
        List<Message> secondBatch = batch(topic, size, size);
        SendResult second = producer.send(secondBatch, queue);
        checkBatchResult(args, secondBatch, second);
        Check.equal(queue, second.getMessageQueue(), "queue of the second batch");
        Check.equal(first.getQueueOffset() + size, second.getQueueOffset(), "queue offset of the second batch");

        Map<String, Message> sent = new LinkedHashMap<>();
        Map<String, SendResult> results = new LinkedHashMap<>();
        for (List<Message> b : List.of(firstBatch, secondBatch)) {
            SendResult r = b == firstBatch ? first : second;
            String[] ids = r.getMsgId().split(",");
            String[] offsetIds = r.getOffsetMsgId().split(",");
            for (int i = 0; i < b.size(); i++) {
                // What the message alone would have got from a single send.
                SendResult own = new SendResult(SendStatus.SEND_OK, ids[i], offsetIds[i], r.getMessageQueue(), r.getQueueOffset() + i);
                sent.put(b.get(i).getKeys(), b.get(i));
                results.put(b.get(i).getKeys(), own);
            }
        }
        Collector got = Collector.start(args, args.name("BatchGroup"), topic);
        got.expectExactlyOnce(sent.keySet());
        for (String key : sent.keySet()) {
            MessageExt m = got.only(key);
            checkDelivery(args, sent.get(key), results.get(key), m);
            Check.equal(sent.get(key).getUserProperty("idx"), m.getUserProperty("idx"), "property idx of " + key);
        }
        Check.result("first_msgId", first.getMsgId());
        got.shutdown();
        producer.shutdown();
    }

    private static List<Message> batch(String topic, int from, int size) {
        List<Message> b = new ArrayList<>();
        for (int i = from; i < from + size; i++) {
            Message m = new Message(topic, "tag" + i, "batch-" + i, ("batch body " + i).getBytes(StandardCharsets.UTF_8));
            m.putUserProperty("idx", Integer.toString(i));
            // A different set of properties per message, so one leaking into another shows.
            for (int p = 0; p <= i % 4; p++) {
                m.putUserProperty("p" + p + "_of_" + i, "v" + p + "-" + i);
            }
            b.add(m);
        }
        return b;
    }

    private static void checkBatchResult(Args args, List<Message> batch, SendResult r) {
        Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "batch send status");
        List<String> ids = new ArrayList<>();
        for (Message m : batch) {
            ids.add(MessageClientIDSetter.getUniqID(m));
        }
        Check.equal(String.join(",", ids), r.getMsgId(), "batch msgId: the messages' UNIQ_KEYs joined by commas");
        String[] offsetIds = r.getOffsetMsgId().split(",", -1);
        Check.equal(batch.size(), offsetIds.length, "offsetMsgIds in <" + r.getOffsetMsgId() + ">");
        long last = -1;
        for (int i = 0; i < offsetIds.length; i++) {
            long offset = checkOffsetMsgId(args, offsetIds[i], "batch message " + i);
            Check.that(offset > last, "commit-log offset of batch message " + i + " after the previous one");
            last = offset;
        }
    }

    static Message message(String topic, String key) {
        return new Message(topic, "TagA", key, ("body of " + key).getBytes(StandardCharsets.UTF_8));
    }

    /** Checks an offsetMsgId names this broker (option {@code broker=ip:port}); returns its commit-log offset. */
    static long checkOffsetMsgId(Args args, String offsetMsgId, String what) {
        Check.that(offsetMsgId != null && ID.matcher(offsetMsgId).matches(), "offsetMsgId of " + what + " is 32 upper-case hex digits: " + offsetMsgId);
        MessageId id;
        try {
            id = MessageDecoder.decodeMessageId(offsetMsgId);
        } catch (Exception e) {
            throw new AssertionError("offsetMsgId " + offsetMsgId + " of " + what + " does not decode: " + e);
        }
        InetSocketAddress addr = (InetSocketAddress) id.getAddress();
        Check.equal(args.get("broker"), addr.getAddress().getHostAddress() + ":" + addr.getPort(), "store host in the offsetMsgId of " + what);
        return id.getOffset();
    }

    /** The offsetMsgId of a delivered message, from its store host and commit-log offset as the client derives it. */
    static String offsetMsgId(MessageExt m) {
        return MessageDecoder.createMessageId(m.getStoreHost(), m.getCommitLogOffset());
    }

    /** A consumed message is the one sent, where the send said it went. */
    static void checkDelivery(Args args, Message sent, SendResult r, MessageExt m) {
        String key = sent.getKeys();
        Check.that(Arrays.equals(sent.getBody(), m.getBody()), "body of " + key + " (" + sent.getBody().length + " bytes sent, " + m.getBody().length + " received)");
        Check.equal(sent.getTopic(), m.getTopic(), "topic of " + key);
        Check.equal(sent.getTags(), m.getTags(), "tags of " + key);
        Check.equal(key, m.getKeys(), "keys of " + key);
        Check.equal(r.getMsgId(), m.getMsgId(), "msgId of " + key);
        Check.equal(r.getOffsetMsgId(), offsetMsgId(m), "offsetMsgId of " + key);
        Check.equal(r.getMessageQueue().getQueueId(), m.getQueueId(), "queue of " + key);
        Check.equal(r.getQueueOffset(), m.getQueueOffset(), "queue offset of " + key);
        Check.equal(checkOffsetMsgId(args, r.getOffsetMsgId(), key), m.getCommitLogOffset(), "commit-log offset of " + key);
        Check.equal(0, m.getReconsumeTimes(), "reconsume times of " + key);
        Map<String, String> want = new TreeMap<>(sent.getProperties());
        want.keySet().removeIf(org.apache.rocketmq.common.message.MessageConst.STRING_HASH_SET::contains);
        Check.equal(want, Collector.userProperties(m), "user properties of " + key);
    }
}

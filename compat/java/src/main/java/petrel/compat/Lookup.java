package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.rocketmq.client.QueryResult;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageId;
import org.apache.rocketmq.common.protocol.ResponseCode;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

/** Finding stored messages again: by offsetMsgId, by UNIQ_KEY (msgId) and by key. */
final class Lookup {
    private Lookup() {}

    /**
     * viewMessage by offsetMsgId and by msgId (producer and DefaultMQAdminExt, what mqadmin
     * queryMsgById calls) returns the message as sent; queryMessage by a key finds exactly the
     * messages carrying it, also one key of several; an unknown key and a commit-log offset
     * past the end fail as against RocketMQ.
     */
    static void viewAndQuery(Args args) throws Exception {
        String topic = args.name("LookupTopic");
        DefaultMQProducer producer = Sending.producer(args, args.name("LookupProducer"));
        Message single = new Message(topic, "TagL", "look-1", "the looked-up body".getBytes(StandardCharsets.UTF_8));
        single.putUserProperty("color", "green");
        single.putUserProperty("size", "42");
        SendResult singleResult = send(producer, single);

        String shared = "shared-key";
        Map<String, Message> sharing = new TreeMap<>();
        Map<String, SendResult> sharingResults = new TreeMap<>();
        for (int i = 0; i < 3; i++) {
            Message m = new Message(topic, "TagS", shared, ("shared " + i).getBytes(StandardCharsets.UTF_8));
            m.putUserProperty("n", Integer.toString(i));
            SendResult r = send(producer, m);
            sharing.put(r.getMsgId(), m);
            sharingResults.put(r.getMsgId(), r);
        }
        Message multi = new Message(topic, "TagM", "", "two keys".getBytes(StandardCharsets.UTF_8));
        multi.setKeys(List.of("multi-a", "multi-b"));
        SendResult multiResult = send(producer, multi);
        // Messages on other topics with the same key: a query is per topic.
        send(producer, new Message(args.name("OtherTopic"), "TagS", shared, "elsewhere".getBytes(StandardCharsets.UTF_8)));

        check("producer.viewMessage(offsetMsgId)", single, singleResult, producer.viewMessage(singleResult.getOffsetMsgId()));
        check("producer.viewMessage(topic, msgId)", single, singleResult, producer.viewMessage(topic, singleResult.getMsgId()));
        check("producer.viewMessage(topic, offsetMsgId)", single, singleResult, producer.viewMessage(topic, singleResult.getOffsetMsgId()));

        DefaultMQAdminExt admin = new DefaultMQAdminExt();
        admin.setNamesrvAddr(args.namesrv());
        admin.setInstanceName(args.name("LookupAdmin") + "_" + System.nanoTime());
        admin.setVipChannelEnabled(false);
        admin.start();
        check("admin.viewMessage(topic, msgId)", single, singleResult, admin.viewMessage(topic, singleResult.getMsgId()));
        check("admin.viewMessage(offsetMsgId)", single, singleResult, admin.viewMessage(singleResult.getOffsetMsgId()));
        check("admin.queryMessageByUniqKey", single, singleResult,
                admin.queryMessageByUniqKey(topic, singleResult.getMsgId(), 32, 0, Long.MAX_VALUE).getMessageList().get(0));
        admin.shutdown();

        QueryResult byKey = producer.queryMessage(topic, "look-1", 32, 0, Long.MAX_VALUE);
        Check.equal(1, byKey.getMessageList().size(), "messages with key look-1");
        check("queryMessage(look-1)", single, singleResult, byKey.getMessageList().get(0));

        QueryResult bySharedKey = producer.queryMessage(topic, shared, 32, 0, Long.MAX_VALUE);
        Map<String, MessageExt> found = new TreeMap<>();
        for (MessageExt m : bySharedKey.getMessageList()) {
            Check.that(found.put(m.getMsgId(), m) == null, "query by " + shared + " returned " + m.getMsgId() + " twice");
        }
        Check.equal(sharing.keySet(), found.keySet(), "msgIds of the messages with key " + shared + " on " + topic);
        for (String id : sharing.keySet()) {
            check("queryMessage(" + shared + ")", sharing.get(id), sharingResults.get(id), found.get(id));
        }

        for (String key : List.of("multi-a", "multi-b")) {
            QueryResult r = producer.queryMessage(topic, key, 32, 0, Long.MAX_VALUE);
            Check.equal(1, r.getMessageList().size(), "messages with key " + key);
            check("queryMessage(" + key + ")", multi, multiResult, r.getMessageList().get(0));
        }

        try {
            QueryResult r = producer.queryMessage(topic, "no-such-key", 32, 0, Long.MAX_VALUE);
            throw new AssertionError("query by an unknown key found " + r.getMessageList().size() + " messages");
        } catch (MQClientException e) {
            Check.equal(ResponseCode.NO_MESSAGE, e.getResponseCode(), "response code of a query by an unknown key (" + e.getErrorMessage() + ")");
        }

        MessageId id = MessageDecoder.decodeMessageId(singleResult.getOffsetMsgId());
        String pastTheEnd = MessageDecoder.createMessageId(id.getAddress(), id.getOffset() + (1L << 30));
        try {
            MessageExt m = producer.viewMessage(pastTheEnd);
            throw new AssertionError("viewMessage past the end of the log returned " + m);
        } catch (MQBrokerException e) {
            Check.equal(ResponseCode.SYSTEM_ERROR, e.getResponseCode(), "response code of viewMessage past the end (" + e.getErrorMessage() + ")");
        }
        producer.shutdown();
    }

    private static SendResult send(DefaultMQProducer producer, Message m) throws Exception {
        SendResult r = producer.send(m);
        Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of " + m.getKeys());
        return r;
    }

    /** A looked-up message is the one sent, with what the send reported. */
    private static void check(String how, Message sent, SendResult r, MessageExt m) throws Exception {
        Check.that(m != null, how + " found the message");
        String what = how + ": ";
        Check.that(Arrays.equals(sent.getBody(), m.getBody()), what + "body <" + new String(m.getBody(), StandardCharsets.UTF_8) + ">");
        Check.equal(sent.getTopic(), m.getTopic(), what + "topic");
        Check.equal(sent.getTags(), m.getTags(), what + "tags");
        Check.equal(sent.getKeys(), m.getKeys(), what + "keys");
        Check.equal(r.getMsgId(), m.getProperty(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX), what + "UNIQ_KEY");
        Check.equal(r.getMessageQueue().getQueueId(), m.getQueueId(), what + "queue");
        Check.equal(r.getQueueOffset(), m.getQueueOffset(), what + "queue offset");
        Check.equal(MessageDecoder.decodeMessageId(r.getOffsetMsgId()).getOffset(), m.getCommitLogOffset(), what + "commit-log offset");
        Map<String, String> want = new TreeMap<>(sent.getProperties());
        want.keySet().removeIf(MessageConst.STRING_HASH_SET::contains);
        Check.equal(want, Collector.userProperties(m), what + "user properties");
    }
}

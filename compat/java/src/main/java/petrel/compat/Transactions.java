package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.client.QueryResult;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.common.protocol.ResponseCode;
import org.apache.rocketmq.client.impl.factory.MQClientInstance;
import org.apache.rocketmq.client.producer.LocalTransactionState;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.client.producer.TransactionListener;
import org.apache.rocketmq.client.producer.TransactionMQProducer;
import org.apache.rocketmq.client.producer.TransactionSendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * Transactional messages with the official {@code TransactionMQProducer}: the local
 * transaction's answer (commit, rollback, unknown), the broker's check-back, a producer that
 * dies between the half message and its end, and a transaction nobody ever resolves. The
 * cargo test starts Petrel with a short transactionTimeOut and check interval.
 */
final class Transactions {
    private Transactions() {}

    /** The local transaction's answer for a message, from its key's prefix. */
    private static LocalTransactionState answerFor(String key) {
        if (key.startsWith("commit")) {
            return LocalTransactionState.COMMIT_MESSAGE;
        }
        if (key.startsWith("rollback")) {
            return LocalTransactionState.ROLLBACK_MESSAGE;
        }
        return LocalTransactionState.UNKNOW;
    }

    private static TransactionMQProducer producer(Args args, TransactionListener listener) throws Exception {
        TransactionMQProducer p = new TransactionMQProducer(args.name("TxProducer"));
        p.setNamesrvAddr(args.namesrv());
        p.setInstanceName("tx_" + System.nanoTime());
        p.setVipChannelEnabled(false);
        // A loaded CI machine can take longer than the default 3 s for a first send.
        p.setSendMsgTimeout(10_000);
        p.setTransactionListener(listener);
        p.start();
        return p;
    }

    private static TransactionSendResult sendHalf(TransactionMQProducer p, String topic, String key) throws Exception {
        Message m = new Message(topic, "TagT", key, ("tx " + key).getBytes(StandardCharsets.UTF_8));
        m.putUserProperty("order", key);
        TransactionSendResult r = p.sendMessageInTransaction(m, null);
        Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send status of half message " + key);
        return r;
    }

    /**
     * Commit, rollback and unknown-then-checked transactions: committed and checked-then-committed
     * messages are delivered exactly once with their properties; rolled-back ones never; the
     * committed one is found by key, and the rolled-back one is not.
     */
    static void outcomes(Args args) throws Exception {
        String topic = args.name("TxTopic");
        Map<String, AtomicInteger> executed = new ConcurrentHashMap<>();
        Map<String, AtomicInteger> checked = new ConcurrentHashMap<>();
        TransactionMQProducer p = producer(args, new TransactionListener() {
            @Override
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                executed.computeIfAbsent(msg.getKeys(), k -> new AtomicInteger()).incrementAndGet();
                return answerFor(msg.getKeys());
            }

            @Override
            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                checked.computeIfAbsent(msg.getKeys(), k -> new AtomicInteger()).incrementAndGet();
                Check.equal(topic, msg.getTopic(), "topic of the checked message");
                // The local transaction of an "unknown" message committed in the meantime.
                return LocalTransactionState.COMMIT_MESSAGE;
            }
        });
        Set<String> delivered = new TreeSet<>();
        int n = 10;
        for (int i = 0; i < n; i++) {
            for (String kind : List.of("commit", "rollback", "unknown")) {
                String key = kind + "-" + i;
                TransactionSendResult r = sendHalf(p, topic, key);
                Check.equal(answerFor(key), r.getLocalTransactionState(), "local state of " + key);
                if (!kind.equals("rollback")) {
                    delivered.add(key);
                }
            }
        }
        Collector c = Collector.start(args, args.name("TxGroup"), topic);
        c.expectExactlyOnce(delivered);
        for (String key : delivered) {
            MessageExt m = c.byKey.get(key).get(0);
            Check.equal("TagT", m.getTags(), "tags of " + key);
            Check.equal(key, m.getUserProperty("order"), "user property of " + key);
            Check.equal("tx " + key, new String(m.getBody(), StandardCharsets.UTF_8), "body of " + key);
        }
        for (int i = 0; i < n; i++) {
            Check.that(checked.containsKey("unknown-" + i), "unknown-" + i + " was checked back");
            Check.that(!checked.containsKey("commit-" + i), "commit-" + i + " was resolved, yet checked");
            Check.that(!checked.containsKey("rollback-" + i), "rollback-" + i + " was resolved, yet checked");
        }
        QueryResult found = p.queryMessage(topic, "commit-3", 32, 0, Long.MAX_VALUE);
        Check.equal(1, found.getMessageList().size(), "messages found by key commit-3");
        Check.equal(topic, found.getMessageList().get(0).getTopic(), "topic of the message found by key");
        try {
            QueryResult none = p.queryMessage(topic, "rollback-3", 32, 0, Long.MAX_VALUE);
            Check.equal(0, none.getMessageList().size(), "messages found by key rollback-3 on the topic");
        } catch (MQClientException e) {
            // The client's way of saying "no message has that key" (QUERY_NOT_FOUND).
            Check.equal(ResponseCode.NO_MESSAGE, e.getResponseCode(), "query of a rolled-back key: " + e);
        }
        Check.result("checked", checked.size());
        c.consumer.shutdown();
        p.shutdown();
    }

    /**
     * The producer sends half messages, never ends them, and dies (the JVM halts without
     * shutting the client down). The cargo test then runs {@link #recoverByCheck}.
     */
    static void abandon(Args args) throws Exception {
        String topic = args.name("TxTopic");
        TransactionMQProducer p = producer(args, new TransactionListener() {
            @Override
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                return LocalTransactionState.UNKNOW;
            }

            @Override
            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                // Dead before any check can reach it.
                Runtime.getRuntime().halt(3);
                return LocalTransactionState.UNKNOW;
            }
        });
        int n = args.getInt("count", 20);
        for (int i = 0; i < n; i++) {
            sendHalf(p, topic, (i % 2 == 0 ? "commit" : "rollback") + "-" + i);
        }
        System.out.println("RESULT sent=" + n);
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }

    /**
     * A second instance of the producer group answers the checks for what {@link #abandon}
     * left: the "commit" ones are delivered exactly once, the "rollback" ones never.
     */
    static void recoverByCheck(Args args) throws Exception {
        String topic = args.name("TxTopic");
        int n = args.getInt("count", 20);
        Set<String> answered = ConcurrentHashMap.newKeySet();
        TransactionMQProducer p = producer(args, new TransactionListener() {
            @Override
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                throw new AssertionError("this producer sends nothing");
            }

            @Override
            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                answered.add(msg.getKeys());
                return answerFor(msg.getKeys());
            }
        });
        Set<String> commits = new TreeSet<>();
        Set<String> all = new TreeSet<>();
        for (int i = 0; i < n; i++) {
            String key = (i % 2 == 0 ? "commit" : "rollback") + "-" + i;
            all.add(key);
            if (i % 2 == 0) {
                commits.add(key);
            }
        }
        Collector c = Collector.start(args, args.name("TxGroup"), topic);
        c.expectExactlyOnce(commits);
        Clients.waitFor("checks of all " + n + " abandoned half messages", () -> answered.containsAll(all));
        c.consumer.shutdown();
        p.shutdown();
    }

    /**
     * A transaction whose check always answers UNKNOW is checked transactionCheckMax times
     * (the test sets it), then moved to TRANS_CHECK_MAX_TIME_TOPIC and never delivered.
     */
    static void neverResolved(Args args) throws Exception {
        String topic = args.name("TxTopic");
        int max = Integer.parseInt(args.get("checkMax"));
        AtomicInteger checks = new AtomicInteger();
        TransactionMQProducer p = producer(args, new TransactionListener() {
            @Override
            public LocalTransactionState executeLocalTransaction(Message msg, Object arg) {
                return LocalTransactionState.UNKNOW;
            }

            @Override
            public LocalTransactionState checkLocalTransaction(MessageExt msg) {
                checks.incrementAndGet();
                return LocalTransactionState.UNKNOW;
            }
        });
        sendHalf(p, topic, "limbo-0");
        Collector c = Collector.start(args, args.name("TxGroup"), topic);
        MQClientInstance factory = p.getDefaultMQProducerImpl().getmQClientFactory();
        String brokerName = p.getDefaultMQProducerImpl().getTopicPublishInfoTable().get(topic)
                .getMessageQueueList().get(0).getBrokerName();
        String broker = factory.findBrokerAddressInPublish(brokerName);
        MessageQueue giveUps = new MessageQueue("TRANS_CHECK_MAX_TIME_TOPIC", brokerName, 0);
        Clients.waitFor("the half message to reach TRANS_CHECK_MAX_TIME_TOPIC", () -> {
            try {
                return factory.getMQClientAPIImpl().getMaxOffset(broker, giveUps, 3000) == 1;
            } catch (Exception e) {
                return false;
            }
        });
        int seen = checks.get();
        // Nothing more: no further check, no delivery.
        Thread.sleep(3000);
        Check.equal(max, seen, "checks before giving up");
        Check.equal(max, checks.get(), "checks after giving up");
        Check.equal(0, c.deliveries.get(), "deliveries of a never resolved transaction");
        c.consumer.shutdown();
        p.shutdown();
    }
}

package petrel.compat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import org.apache.rocketmq.acl.common.AclClientRPCHook;
import org.apache.rocketmq.acl.common.SessionCredentials;
import org.apache.rocketmq.client.consumer.DefaultMQPullConsumer;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.PullResult;
import org.apache.rocketmq.client.consumer.PullStatus;
import org.apache.rocketmq.client.consumer.rebalance.AllocateMessageQueueAveragely;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageQueue;
import org.apache.rocketmq.common.protocol.ResponseCode;
import org.apache.rocketmq.common.protocol.route.BrokerData;
import org.apache.rocketmq.remoting.RPCHook;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

/**
 * Plain ACL with the official {@code AclClientRPCHook}. The cargo test starts Petrel with
 * {@code aclEnable} and a {@code plain_acl.yml} naming this run's topics and groups: an admin
 * account, {@code ak_user1} with PUB|SUB on TopicA and SUB on GroupG (everything else DENY), and
 * {@code ak_local} whitelisted on 127.0.0.1. {@code granted=} names a second file that also
 * gives {@code ak_user1} PUB on TopicB; the scenario moves it over {@code aclFile=}.
 */
final class Acl {
    private Acl() {}

    private static final String USER = "ak_user1";
    private static final String USER_SECRET = "user1-secret";

    private static RPCHook hook(String accessKey, String secretKey) {
        return new AclClientRPCHook(new SessionCredentials(accessKey, secretKey));
    }


    private static Message message(String topic, String key) {
        return new Message(topic, "TagA", key, ("acl " + key).getBytes(StandardCharsets.UTF_8));
    }

    /** Runs {@code call} and checks it is refused with NO_PERMISSION and a remark containing {@code remark}. */
    private static void refused(String what, Callable<?> call, String remark) {
        Object got;
        try {
            got = call.call();
        } catch (Exception e) {
            StringBuilder text = new StringBuilder();
            boolean noPermission = false;
            for (Throwable t = e; t != null; t = t.getCause()) {
                text.append(t).append(" | ");
                if (t instanceof MQBrokerException) {
                    noPermission |= ((MQBrokerException) t).getResponseCode() == ResponseCode.NO_PERMISSION;
                } else if (t instanceof MQClientException) {
                    noPermission |= ((MQClientException) t).getResponseCode() == ResponseCode.NO_PERMISSION;
                }
            }
            Check.that(noPermission, what + ": refused with NO_PERMISSION (16), got " + text);
            Check.that(text.indexOf(remark) >= 0, what + ": remark contains \"" + remark + "\", got " + text);
            Check.that(text.indexOf("secret") < 0, what + ": the refusal mentions no secret: " + text);
            System.out.println("REFUSED " + what + ": " + remark);
            return;
        }
        throw new AssertionError(what + ": expected a refusal, got " + got);
    }

    static void accounts(Args args) throws Exception {
        String topicA = args.name("TopicA");
        String topicB = args.name("TopicB");
        String groupG = args.name("GroupG");
        String groupH = args.name("GroupH");

        // The admin account creates both topics; ak_user1 may not.
        DefaultMQAdminExt admin = new DefaultMQAdminExt(hook("rocketmq_admin", "admin-secret-1"));
        admin.setNamesrvAddr(args.namesrv());
        admin.setInstanceName("acl_admin_" + System.nanoTime());
        admin.setVipChannelEnabled(false);
        admin.start();
        String brokerAddr = null;
        for (BrokerData b : admin.examineBrokerClusterInfo().getBrokerAddrTable().values()) {
            brokerAddr = b.getBrokerAddrs().get(0L);
        }
        Check.that(brokerAddr != null, "a broker in the cluster");
        for (String topic : new String[] {topicA, topicB}) {
            admin.createAndUpdateTopicConfig(brokerAddr, new TopicConfig(topic, 4, 4, 6));
        }
        DefaultMQAdminExt user = new DefaultMQAdminExt(hook(USER, USER_SECRET));
        user.setNamesrvAddr(args.namesrv());
        user.setInstanceName("acl_user_admin_" + System.nanoTime());
        user.setVipChannelEnabled(false);
        user.start();
        String addr = brokerAddr;
        refused("ak_user1 creating a topic", () -> {
            user.createAndUpdateTopicConfig(addr, new TopicConfig(args.name("TopicC"), 4, 4, 6));
            return "created";
        }, "accessKey ak_user1 is not one");
        user.shutdown();

        // PUB on TopicA, nothing on TopicB.
        DefaultMQProducer p = Clients.signedProducer(args, args.name("AclProducer"), hook(USER, USER_SECRET));
        Set<String> keys = new TreeSet<>();
        for (int i = 0; i < 5; i++) {
            String key = "acl-" + i;
            SendResult r = p.send(message(topicA, key));
            Check.equal(SendStatus.SEND_OK, r.getSendStatus(), "send of " + key + " to " + topicA);
            keys.add(key);
        }
        refused("ak_user1 sending to TopicB", () -> p.send(message(topicB, "b-0")),
                "No permission to PUB topic " + topicB + " for account " + USER);

        // SUB on GroupG and TopicA: a push consumer gets every message exactly once.
        DefaultMQPushConsumer pc = new DefaultMQPushConsumer(groupG, hook(USER, USER_SECRET), new AllocateMessageQueueAveragely());
        pc.setNamesrvAddr(args.namesrv());
        pc.setInstanceName(groupG + "_" + System.nanoTime());
        pc.setVipChannelEnabled(false);
        pc.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        Collector c = Collector.start(pc, topicA);
        c.expectExactlyOnce(keys);
        c.shutdown();

        // Another group, or TopicB as GroupG: refused.
        for (String[] pull : new String[][] {{groupH, topicA, "No permission to SUB group " + groupH + " for account " + USER},
                {groupG, topicB, "No permission to SUB topic " + topicB + " for account " + USER}}) {
            DefaultMQPullConsumer pull0 = new DefaultMQPullConsumer(pull[0], hook(USER, USER_SECRET));
            pull0.setNamesrvAddr(args.namesrv());
            pull0.setInstanceName(pull[0] + "_pull_" + System.nanoTime());
            pull0.setVipChannelEnabled(false);
            pull0.start();
            MessageQueue mq = pull0.fetchSubscribeMessageQueues(pull[1]).iterator().next();
            refused("ak_user1 pulling " + pull[1] + " as " + pull[0], () -> pull0.pull(mq, "*", 0, 32), pull[2]);
            pull0.shutdown();
        }

        // A wrong secret, an unknown account, no account at all, a request changed after signing.
        DefaultMQProducer wrong = Clients.signedProducer(args, args.name("WrongSecret"), hook(USER, "not-the-right-one"));
        refused("a wrong secret", () -> wrong.send(message(topicA, "w-0")), "signature mismatch for accessKey " + USER);
        wrong.shutdown();
        DefaultMQProducer unknown = Clients.signedProducer(args, args.name("Unknown"), hook("ak_nobody", "whatever-1"));
        refused("an unknown account", () -> unknown.send(message(topicA, "u-0")), "unknown accessKey ak_nobody");
        unknown.shutdown();
        DefaultMQProducer plain = new DefaultMQProducer(args.name("NoAcl"));
        plain.setNamesrvAddr(args.namesrv());
        plain.setInstanceName("noacl_" + System.nanoTime());
        plain.setVipChannelEnabled(false);
        plain.setRetryTimesWhenSendFailed(0);
        plain.start();
        refused("no AccessKey from an address not whitelisted", () -> plain.send(message(topicA, "n-0")),
                "address 127.0.0.1 is not whitelisted");
        plain.shutdown();
        RPCHook signing = hook(USER, USER_SECRET);
        RPCHook tampering = new RPCHook() {
            @Override
            public void doBeforeRequest(String remoteAddr, RemotingCommand request) {
                signing.doBeforeRequest(remoteAddr, request);
                request.addExtField("tampered", "after signing");
            }

            @Override
            public void doAfterResponse(String remoteAddr, RemotingCommand request, RemotingCommand response) {}
        };
        DefaultMQProducer tampered = Clients.signedProducer(args, args.name("Tampered"), tampering);
        refused("a request changed after signing", () -> tampered.send(message(topicA, "t-0")),
                "signature mismatch for accessKey " + USER);
        tampered.shutdown();

        // An account whitelisted on this address passes without a valid signature, as in RocketMQ.
        DefaultMQProducer local = Clients.signedProducer(args, args.name("Local"), hook("ak_local", "not-its-secret"));
        Check.equal(SendStatus.SEND_OK, local.send(message(topicB, "local-0")).getSendStatus(), "whitelisted account's send");
        local.shutdown();

        // Granting PUB on TopicB in the file applies without a restart.
        Path live = Paths.get(args.get("aclFile"));
        Path tmp = live.resolveSibling("plain_acl.yml.tmp");
        Files.copy(Paths.get(args.get("granted")), tmp, StandardCopyOption.REPLACE_EXISTING);
        long start = System.nanoTime();
        Files.move(tmp, live, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        SendResult granted = null;
        while (granted == null) {
            try {
                granted = p.send(message(topicB, "b-1"));
            } catch (MQClientException | MQBrokerException e) {
                Check.that((System.nanoTime() - start) / 1_000_000 < 15_000, "PUB on TopicB granted within 15 s; still " + e);
                Thread.sleep(100);
            }
        }
        Check.equal(SendStatus.SEND_OK, granted.getSendStatus(), "send to TopicB once granted");
        Check.result("reloadMillis", (System.nanoTime() - start) / 1_000_000);
        p.shutdown();
        admin.shutdown();
    }
}

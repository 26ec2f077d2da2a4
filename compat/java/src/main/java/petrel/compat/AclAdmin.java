package petrel.compat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.rocketmq.acl.common.AclClientRPCHook;
import org.apache.rocketmq.acl.common.SessionCredentials;
import org.apache.rocketmq.client.exception.MQBrokerException;
import org.apache.rocketmq.client.exception.MQClientException;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.TopicConfig;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.protocol.ResponseCode;
import org.apache.rocketmq.common.protocol.route.BrokerData;
import org.apache.rocketmq.remoting.RPCHook;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;
import org.apache.rocketmq.tools.command.MQAdminStartup;

/**
 * mqadmin 4.9.8's ACL commands against a Petrel with {@code aclEnable} whose file holds only the
 * admin account {@code rocketmq_admin}. mqadmin signs with the account in
 * {@code $ROCKETMQ_HOME/conf/tools.yml} ({@code MQAdminStartup} hands
 * {@code AclUtils.getAclRPCHook(home + "/conf/tools.yml")} to every command), so this makes a
 * home with that file and runs the commands in-process, reading what they print:
 * {@code updateAclConfig} creates an account with PUB on one topic, which a producer signed as
 * it then uses (and is refused elsewhere); the same command signed by that non-admin account is
 * refused; a bad permission, and a whitelist change naming another ACL file, are refused with a
 * remark; {@code deleteAccessConfig} removes the
 * account ("unknown accessKey"); {@code updateGlobalWhiteAddr} lets an unsigned client in from
 * 127.0.0.1; {@code clusterAclConfigVersion} shows a version that grew after each change.
 */
final class AclAdmin {
    private AclAdmin() {}

    private static final String ADMIN = "rocketmq_admin";
    private static final String ADMIN_SECRET = "admin-secret-1";
    private static final String USER = "ak_mqadmin_user";
    private static final String USER_SECRET = "mqadmin-user-secret";

    private static Path home;

    private static RPCHook hook(String accessKey, String secretKey) {
        return new AclClientRPCHook(new SessionCredentials(accessKey, secretKey));
    }

    /** Makes the mqadmin home once (MQAdminStartup reads rocketmq.home.dir when first loaded). */
    private static void makeHome() throws Exception {
        if (home != null) {
            return;
        }
        home = Files.createTempDirectory(Path.of(System.getProperty("user.home")), "rocketmq-home");
        Path conf = Files.createDirectories(home.resolve("conf"));
        Files.write(conf.resolve("logback_tools.xml"),
                "<configuration><root level=\"OFF\"/></configuration>\n".getBytes(StandardCharsets.UTF_8));
        System.setProperty("rocketmq.home.dir", home.toString());
    }

    /** mqadmin's {@code conf/tools.yml}: the account every later command signs with. */
    private static void signAs(String accessKey, String secretKey) throws Exception {
        makeHome();
        Files.write(home.resolve("conf").resolve("tools.yml"),
                ("accessKey: " + accessKey + "\nsecretKey: " + secretKey + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** Runs one mqadmin command and returns what it printed (stdout and stderr). */
    private static String mqadmin(String... argv) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream capture = new PrintStream(buf, true, StandardCharsets.UTF_8);
        System.setOut(capture);
        System.setErr(capture);
        try {
            MQAdminStartup.main(argv);
        } finally {
            capture.flush();
            System.setOut(out);
            System.setErr(err);
        }
        String text = buf.toString(StandardCharsets.UTF_8);
        System.out.println("$ mqadmin " + String.join(" ", argv) + "\n" + text);
        return text;
    }

    /** The AclConfigVersionNum clusterAclConfigVersion prints for {@code brokerAddr}. */
    private static long version(Args args, String cluster, String brokerAddr) {
        String out = mqadmin("clusterAclConfigVersion", "-n", args.namesrv(), "-c", cluster);
        for (String line : out.split("\n")) {
            String[] cols = line.trim().split("\\s+");
            if (cols.length >= 5 && cols[2].equals(brokerAddr)) {
                return Long.parseLong(cols[4]);
            }
        }
        throw new AssertionError("clusterAclConfigVersion shows no row for " + brokerAddr + ":\n" + out);
    }


    private static Message message(String topic, String key) {
        return new Message(topic, "TagA", key, ("acl-admin " + key).getBytes(StandardCharsets.UTF_8));
    }

    /** Sends and checks the send is refused with NO_PERMISSION and a remark containing {@code remark}. */
    private static void refused(String what, DefaultMQProducer p, String topic, String remark) {
        try {
            p.send(message(topic, "refused"));
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
            System.out.println("REFUSED " + what + ": " + remark);
            return;
        }
        throw new AssertionError(what + ": expected a refusal");
    }

    static void commands(Args args) throws Exception {
        String topicP = args.name("TopicP");
        String topicQ = args.name("TopicQ");
        DefaultMQAdminExt admin = new DefaultMQAdminExt(hook(ADMIN, ADMIN_SECRET));
        admin.setNamesrvAddr(args.namesrv());
        admin.setInstanceName("acl_admin_" + System.nanoTime());
        admin.setVipChannelEnabled(false);
        admin.start();
        String brokerAddr = null;
        String cluster = null;
        for (java.util.Map.Entry<String, java.util.Set<String>> c
                : admin.examineBrokerClusterInfo().getClusterAddrTable().entrySet()) {
            cluster = c.getKey();
        }
        for (BrokerData b : admin.examineBrokerClusterInfo().getBrokerAddrTable().values()) {
            brokerAddr = b.getBrokerAddrs().get(0L);
        }
        Check.that(brokerAddr != null && cluster != null, "a broker in a cluster");
        for (String topic : new String[] {topicP, topicQ}) {
            admin.createAndUpdateTopicConfig(brokerAddr, new TopicConfig(topic, 4, 4, 6));
        }
        admin.shutdown();

        signAs(ADMIN, ADMIN_SECRET);
        long v0 = version(args, cluster, brokerAddr);

        // updateAclConfig: a new account with PUB on TopicP only.
        String out = mqadmin("updateAclConfig", "-n", args.namesrv(), "-b", brokerAddr, "-a", USER, "-s", USER_SECRET,
                "-i", "DENY", "-u", "DENY", "-t", topicP + "=PUB");
        Check.that(out.contains("create or update plain access config to " + brokerAddr + " success"),
                "updateAclConfig succeeds: " + out);
        long v1 = version(args, cluster, brokerAddr);
        Check.that(v1 > v0, "the version grew after updateAclConfig: " + v0 + " -> " + v1);
        DefaultMQProducer user = Clients.signedProducer(args, args.name("AclAdminUser"), hook(USER, USER_SECRET));
        Check.equal(SendStatus.SEND_OK, user.send(message(topicP, "p-0")).getSendStatus(), "the new account's send to TopicP");
        refused("the new account sending to TopicQ", user, topicQ, "No permission to PUB topic " + topicQ + " for account " + USER);

        // A bad permission: refused with a remark, nothing changes.
        out = mqadmin("updateAclConfig", "-n", args.namesrv(), "-b", brokerAddr, "-a", USER, "-s", USER_SECRET,
                "-t", topicP + "=WRITE");
        Check.that(!out.contains("success") && out.contains("WRITE"), "a bad permission is refused with a remark: " + out);
        Check.equal(v1, version(args, cluster, brokerAddr), "version after a refused change");
        Check.equal(SendStatus.SEND_OK, user.send(message(topicP, "p-1")).getSendStatus(), "the account still sends");

        // The same command signed by the non-admin account: refused.
        signAs(USER, USER_SECRET);
        out = mqadmin("updateAclConfig", "-n", args.namesrv(), "-b", brokerAddr, "-a", "ak_sneaky_user", "-s", "sneaky-secret",
                "-m", "true");
        Check.that(!out.contains("success") && out.contains("needs an admin account"),
                "updateAclConfig signed by a non-admin is refused: " + out);
        System.out.println("REFUSED updateAclConfig signed by " + USER);
        signAs(ADMIN, ADMIN_SECRET);

        // deleteAccessConfig: the account is gone.
        out = mqadmin("deleteAccessConfig", "-n", args.namesrv(), "-b", brokerAddr, "-a", USER);
        Check.that(out.contains("delete plain access config account from " + brokerAddr + " success"),
                "deleteAccessConfig succeeds: " + out);
        long v2 = version(args, cluster, brokerAddr);
        Check.that(v2 > v1, "the version grew after deleteAccessConfig: " + v1 + " -> " + v2);
        refused("the deleted account", user, topicP, "unknown accessKey " + USER);
        user.shutdown();

        // updateGlobalWhiteAddr: a client without credentials from 127.0.0.1 gets in.
        DefaultMQProducer plain = Clients.signedProducer(args, args.name("AclAdminPlain"), null);
        refused("no AccessKey before the whitelist", plain, topicQ, "address 127.0.0.1 is not whitelisted");
        out = mqadmin("updateGlobalWhiteAddr", "-n", args.namesrv(), "-b", brokerAddr, "-g", "127.0.0.1",
                "-p", "/nowhere/plain_other.yml");
        Check.that(!out.contains("success") && out.contains("is not this broker's ACL file"),
                "updateGlobalWhiteAddr naming another file is refused: " + out);
        Check.equal(v2, version(args, cluster, brokerAddr), "version after a refused whitelist change");
        out = mqadmin("updateGlobalWhiteAddr", "-n", args.namesrv(), "-b", brokerAddr, "-g", "10.10.103.*,127.0.0.1");
        Check.that(out.contains("update global white remote addresses to " + brokerAddr + " success"),
                "updateGlobalWhiteAddr succeeds: " + out);
        long v3 = version(args, cluster, brokerAddr);
        Check.that(v3 > v2, "the version grew after updateGlobalWhiteAddr: " + v2 + " -> " + v3);
        Check.equal(SendStatus.SEND_OK, plain.send(message(topicQ, "q-0")).getSendStatus(), "an unsigned send once whitelisted");
        plain.shutdown();
        Check.result("versions", v0 + "," + v1 + "," + v2 + "," + v3);
    }
}

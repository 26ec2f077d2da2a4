package petrel.compat5r;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.remoting.RPCHook;
import org.apache.rocketmq.remoting.protocol.heartbeat.MessageModel;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

/** The official 5.x remoting clients, configured as a user would against one name server. */
final class Clients {
    /** Bound of every wait: generous, for a loaded CI machine. */
    static final Duration WAIT = Duration.ofSeconds(60);

    private Clients() {}

    /**
     * A started producer. The VIP channel (broker port - 2) is off: the test broker listens on
     * an ephemeral port, so port - 2 is not its VIP listener. Everything else is the default.
     */
    static DefaultMQProducer producer(Args args, String group) throws Exception {
        DefaultMQProducer p = new DefaultMQProducer(group);
        p.setNamesrvAddr(args.namesrv());
        p.setInstanceName(group + "_" + System.nanoTime());
        p.setVipChannelEnabled(false);
        p.start();
        return p;
    }

    /** A started admin client (what mqadmin runs). */
    static DefaultMQAdminExt admin(Args args) throws Exception {
        DefaultMQAdminExt admin = new DefaultMQAdminExt();
        admin.setNamesrvAddr(args.namesrv());
        admin.setInstanceName("admin_" + System.nanoTime());
        admin.setVipChannelEnabled(false);
        admin.start();
        return admin;
    }

    /**
     * A CLUSTERING push consumer, not yet started, that leaves rebalancing to the broker
     * ({@code clientRebalance = false}): it asks QUERY_ASSIGNMENT for its queues and pops them
     * when the broker says POP. Its own client instance, so {@code hook} sees every request it
     * makes. Consumes from the first offset.
     */
    static DefaultMQPushConsumer popConsumer(Args args, String group, RPCHook hook) {
        DefaultMQPushConsumer c = new DefaultMQPushConsumer(group, hook);
        c.setNamesrvAddr(args.namesrv());
        c.setInstanceName(group + "_" + System.nanoTime());
        c.setVipChannelEnabled(false);
        c.setClientRebalance(false);
        c.setMessageModel(MessageModel.CLUSTERING);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        return c;
    }

    /** Polls until {@code done} holds; fails naming {@code what} after {@code timeout}. */
    static void waitFor(String what, Duration timeout, BooleanSupplier done) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + timeout + " waiting for " + what);
            }
            Thread.sleep(20);
        }
    }

    /** {@link #waitFor(String, Duration, BooleanSupplier)} within {@link #WAIT}. */
    static void waitFor(String what, BooleanSupplier done) throws InterruptedException {
        waitFor(what, WAIT, done);
    }
}

package petrel.compat;

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.remoting.RPCHook;

/** The official clients, configured as a user would against one name server. */
public final class Clients {
    /** Bound of every wait: generous, for a loaded CI machine. */
    public static final Duration WAIT = Duration.ofSeconds(60);

    private Clients() {}

    /**
     * A started producer. The VIP channel (broker port - 2) is off: the test broker listens on
     * an ephemeral port, so port - 2 is not its VIP listener. Everything else is the default.
     */
    public static DefaultMQProducer producer(Args args, String group) throws Exception {
        DefaultMQProducer p = new DefaultMQProducer(group);
        p.setNamesrvAddr(args.namesrv());
        p.setInstanceName(group + "_" + System.nanoTime());
        p.setVipChannelEnabled(false);
        p.start();
        return p;
    }

    /**
     * A started producer signing with {@code hook} (none if null), for ACL scenarios: its own
     * client instance (instances are shared by name, and with them the hook), and no retry, since
     * a refusal is final.
     */
    public static DefaultMQProducer signedProducer(Args args, String group, RPCHook hook) throws Exception {
        DefaultMQProducer p = hook == null ? new DefaultMQProducer(group) : new DefaultMQProducer(group, hook);
        p.setNamesrvAddr(args.namesrv());
        p.setInstanceName(group + "_" + System.nanoTime());
        p.setVipChannelEnabled(false);
        p.setSendMsgTimeout(10_000);
        p.setRetryTimesWhenSendFailed(0);
        p.start();
        return p;
    }

    /** A push consumer not yet started; consumes from the first offset. */
    public static DefaultMQPushConsumer pushConsumer(Args args, String group) {
        DefaultMQPushConsumer c = new DefaultMQPushConsumer(group);
        c.setNamesrvAddr(args.namesrv());
        c.setInstanceName(group + "_" + System.nanoTime());
        c.setVipChannelEnabled(false);
        c.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        return c;
    }

    /**
     * Waits until every one of {@code items} has {@code arrived}, or a problem was recorded
     * (which the caller then reports).
     */
    public static <T> void waitForEach(String what, Collection<T> items, Predicate<T> arrived, List<String> problems)
            throws InterruptedException {
        waitFor(what, () -> !problems.isEmpty() || items.stream().allMatch(arrived));
    }

    /** Polls until {@code done} holds; fails naming {@code what} after {@link #WAIT}. */
    public static void waitFor(String what, BooleanSupplier done) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + WAIT + " waiting for " + what);
            }
            Thread.sleep(20);
        }
    }
}

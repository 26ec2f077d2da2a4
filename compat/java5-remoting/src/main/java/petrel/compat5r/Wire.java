package petrel.compat5r;

import java.nio.ByteBuffer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.rocketmq.common.message.MessageDecoder;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.remoting.CommandCustomHeader;
import org.apache.rocketmq.remoting.RPCHook;
import org.apache.rocketmq.remoting.protocol.RemotingCommand;
import org.apache.rocketmq.remoting.protocol.RequestCode;
import org.apache.rocketmq.remoting.protocol.ResponseCode;
import org.apache.rocketmq.remoting.rpc.TopicRequestHeader;

/**
 * What a client asked the brokers about one topic, seen through the client's own RPC hook:
 * how many requests of each code it sent for the topic (one-way ones too), which answers they
 * got, and the tags of every message a POP_MESSAGE answer carried (before the client filters
 * them again itself).
 */
final class Wire implements RPCHook {
    private final String topic;
    private final Map<Integer, AtomicInteger> requests = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> answers = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> poppedTags = new ConcurrentHashMap<>();

    Wire(String topic) {
        this.topic = topic;
    }

    @Override
    public void doBeforeRequest(String remoteAddr, RemotingCommand request) {
        // Counted here: one-way requests (a consumer's offset commits) get no response.
        if (topic.equals(topicOf(request))) {
            requests.computeIfAbsent(request.getCode(), k -> new AtomicInteger()).incrementAndGet();
        }
    }

    @Override
    public void doAfterResponse(String remoteAddr, RemotingCommand request, RemotingCommand response) {
        if (!topic.equals(topicOf(request))) {
            return;
        }
        int code = request.getCode();
        answers.computeIfAbsent(code + ":" + response.getCode(), k -> new AtomicInteger()).incrementAndGet();
        if (code == RequestCode.POP_MESSAGE && response.getCode() == ResponseCode.SUCCESS && response.getBody() != null) {
            for (MessageExt m : MessageDecoder.decodes(ByteBuffer.wrap(response.getBody()), false)) {
                String tag = m.getTags() == null ? "" : m.getTags();
                poppedTags.computeIfAbsent(tag, k -> new AtomicInteger()).incrementAndGet();
            }
        }
    }

    private static String topicOf(RemotingCommand request) {
        CommandCustomHeader h = request.readCustomHeader();
        return h instanceof TopicRequestHeader ? ((TopicRequestHeader) h).getTopic() : null;
    }

    /** Requests of {@code code} the client sent for the topic, answered or not. */
    int requests(int code) {
        AtomicInteger n = requests.get(code);
        return n == null ? 0 : n.get();
    }

    /** Requests of {@code code} answered with {@code responseCode}. */
    int answers(int code, int responseCode) {
        AtomicInteger n = answers.get(code + ":" + responseCode);
        return n == null ? 0 : n.get();
    }

    /** Every request code and answer code seen, e.g. {@code 200050:0=3}, sorted. */
    String answersSeen() {
        return new java.util.TreeMap<>(answers).toString();
    }

    /** How many popped messages carried each tag, sorted by tag. */
    String poppedTags() {
        return new java.util.TreeMap<>(poppedTags).toString();
    }
}

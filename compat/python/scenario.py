"""Scenarios that drive the official RocketMQ 5.x Python client (PyPI rocketmq-python-client,
gRPC) against Petrel's gRPC endpoint:

    scenario.py <name> endpoint=HOST:PORT topic=T group=G [key=value...]

The cargo test creates the topic and the group first. A scenario runs its clients to the end
and prints what it saw as `RESULT key=value` lines, one fact a line; the cargo test asserts
them. `PASSED <name>` (exit 0) says the scenario ran to its end, `FAILED <name>: <why>`
(exit 1) that a client call raised. The client's own log is in ~/logs/rocketmq_python/.
"""

import math
import os
import sys
import threading
import time
import traceback

from rocketmq import (ClientConfiguration, ConsumeResult, Credentials,
                      FilterExpression, Message, MessageListener, Producer,
                      PushConsumer, SimpleConsumer, TransactionChecker,
                      TransactionResolution)

# The client keeps no body digest on the messages it hands out (it only sets `corrupted`
# when a digest does not match), so the digest each message arrived with is noted here, by
# message id, as the client decodes it from the wire. This observes; it changes nothing.
DIGESTS = {}
_decode = Message.fromProtobuf


def _decode_noting_digest(self, pb):
    sp = pb.system_properties
    DIGESTS[sp.message_id] = (sp.body_digest.type, sp.body_digest.checksum) if sp.HasField(
        "body_digest") else None
    return _decode(self, pb)


Message.fromProtobuf = _decode_noting_digest

# Long-polling window of every receive, in seconds: the Apache proxy's smallest.
AWAIT_S = 5


class Args:
    def __init__(self, argv):
        self.opts = {}
        for kv in argv:
            k, sep, v = kv.partition("=")
            if not sep or not k:
                raise SystemExit(f"not key=value: {kv}")
            self.opts[k] = v

    def get(self, key, otherwise=None):
        v = self.opts.get(key, otherwise)
        if v is None:
            raise SystemExit(f"missing option {key}=...")
        return v

    def int(self, key, otherwise):
        return int(self.get(key, str(otherwise)))


def result(key, value):
    # Booleans as the Java and Node programs print them, so one cargo test reads all three.
    if isinstance(value, bool):
        value = "true" if value else "false"
    print(f"RESULT {key}={value}", flush=True)


def now_ms():
    return int(time.time() * 1000)


def config(a):
    # No access key: Petrel's gRPC endpoint runs without ACL in these tests.
    return ClientConfiguration(a.get("endpoint"), Credentials(), request_timeout=10)


def producer(a, checker=None):
    # tls_enable defaults to False: plaintext h2c. The topic is named up front so the
    # producer reports it in its settings, which is how a transaction check finds it.
    p = Producer(config(a), (a.get("topic"),), checker)
    p.startup()
    return p


def simple_consumer(a, tag="*"):
    c = SimpleConsumer(config(a), a.get("group"), {a.get("topic"): FilterExpression(tag)},
                       await_duration=AWAIT_S)
    c.startup()
    return c


def message(a, body, tag=None, key=None, props=None, group=None):
    m = Message()
    m.topic = a.get("topic")
    m.body = body
    if tag:
        m.tag = tag
    if key:
        m.keys = key
    for k, v in (props or {}).items():
        m.add_property(k, v)
    if group:
        m.message_group = group
    return m


def digest_ok(m):
    """The message arrived with a body digest of a known type that matched its body."""
    d = DIGESTS.get(m.message_id)
    return d is not None and d[0] != 0 and not m.corrupted


def receive_for(consumer, seconds, invisible_s, on_message):
    """Receives (and hands each message to `on_message`) until `seconds` pass or
    `on_message` returns True."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        for m in consumer.receive(32, invisible_s):
            if on_message(m):
                return


def normal(a):
    """1,000 messages with tag TagA (plus 100 TagB the consumer must not get), each with its
    key, user property and body, received and acked by a simple consumer filtering TagA."""
    count = a.int("count", 1000)
    invisible_s = a.int("invisible", 15)
    consumer = simple_consumer(a, "TagA")
    p = producer(a)
    expected = {}
    other = 0
    for i in range(count):
        body = f"normal {i} ".encode() + b"x" * (i % 100)
        r = p.send(message(a, body, "TagA", f"key-{i}", {"index": str(i)}))
        expected[r.message_id] = (i, body)
        if i % 10 == 9:
            p.send(message(a, f"other {i}".encode(), "TagB", f"other-{i}"))
            other += 1
    result("sent", len(expected))
    result("sent_other_tag", other)

    seen = {}
    stats = {"received": 0, "mismatched": 0, "other_tag": 0, "unknown": 0,
             "first_attempt": 0, "digest_ok": 0, "acked": 0}

    def check(m):
        stats["received"] += 1
        want = expected.get(m.message_id)
        if m.tag != "TagA":
            stats["other_tag"] += 1
        elif want is None:
            stats["unknown"] += 1
        else:
            i, body = want
            same = (m.body == body and m.keys == {f"key-{i}"}
                    and m.properties == {"index": str(i)} and m.topic == a.get("topic"))
            if not same:
                stats["mismatched"] += 1
                print(f"mismatch {m.message_id}: body={m.body!r} tag={m.tag} keys={m.keys} "
                      f"properties={m.properties}", flush=True)
        stats["first_attempt"] += m.delivery_attempt == 1
        stats["digest_ok"] += digest_ok(m)
        seen[m.message_id] = seen.get(m.message_id, 0) + 1
        consumer.ack(m)
        stats["acked"] += 1
        return len(set(seen) & set(expected)) == len(expected)

    receive_for(consumer, a.int("seconds", 90), invisible_s, check)
    result("distinct", len(seen))
    for k, v in stats.items():
        result(k, v)
    p.shutdown()
    consumer.shutdown()


def receive_one(consumer, seconds, invisible_s):
    """The first message received within `seconds`, and when the receive that got it began."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        began = now_ms()
        msgs = consumer.receive(1, invisible_s)
        if msgs:
            return msgs[0], began
    return None, None


def redeliver(a):
    """One message received and not acked comes back after its invisible time, as attempt 2;
    acked then, it does not come back."""
    invisible_s = a.int("invisible", 10)
    consumer = simple_consumer(a)
    p = producer(a)
    sent = p.send(message(a, b"redeliver me", "TagA", "redeliver-key"))
    first, first_began = receive_one(consumer, 30, invisible_s)
    result("first_received", first is not None)
    result("first_id_matches", first is not None and first.message_id == sent.message_id)
    result("first_attempt", first.delivery_attempt if first else None)
    second, _ = receive_one(consumer, invisible_s + 30, invisible_s)
    back_ms = now_ms()
    result("second_received", second is not None)
    if second is not None:
        result("second_id_matches", second.message_id == sent.message_id)
        result("second_attempt", second.delivery_attempt)
        result("second_body_matches", second.body == b"redeliver me")
        result("redelivered_after_ms", back_ms - first_began)
        consumer.ack(second)
        result("acked", True)
        # Long enough for a redelivery had the ack been lost: one more invisible time.
        later = []
        receive_for(consumer, invisible_s + 3, invisible_s, lambda m: later.append(m) and False)
        result("after_ack", len(later))
    p.shutdown()
    consumer.shutdown()


def fifo(a):
    """3 message groups x 10 messages, sent interleaved; a consumer of a FIFO group gets
    each group's messages in the order they were sent."""
    groups = a.int("groups", 3)
    per_group = a.int("per_group", 10)
    consumer = simple_consumer(a)
    p = producer(a)
    for seq in range(per_group):
        for g in range(groups):
            p.send(message(a, f"mg{g}:{seq}".encode(), "TagA", f"mg{g}-{seq}",
                           group=f"mg{g}"))
    order = {f"mg{g}": [] for g in range(groups)}
    stats = {"received": 0, "group_mismatched": 0}

    def take(m):
        stats["received"] += 1
        g, _, seq = m.body.decode().partition(":")
        if m.message_group != g:
            stats["group_mismatched"] += 1
        order.setdefault(g, []).append(int(seq))
        consumer.ack(m)
        return stats["received"] >= groups * per_group

    receive_for(consumer, a.int("seconds", 60), 15, take)
    # The route says a FIFO topic takes FIFO messages only: the producer itself refuses one
    # without a message group.
    try:
        p.send(message(a, b"plain", "TagA", "plain-key"))
        result("plain_refused", False)
    except Exception as e:  # noqa: B902 - which exception says what the client checked
        print(f"plain message refused: {e!r}", flush=True)
        result("plain_refused", "message type" in str(e).lower())
    for g, seqs in sorted(order.items()):
        result(f"order_{g}", ",".join(map(str, seqs)))
    for k, v in stats.items():
        result(k, v)
    p.shutdown()
    consumer.shutdown()


def delay(a):
    """A message due 3 s from now (whole seconds: the client sends seconds only) is not
    delivered before it is due, and is delivered soon after."""
    consumer = simple_consumer(a)
    p = producer(a)
    due_s = math.ceil(time.time()) + a.int("delay", 3)
    m = message(a, b"later", "TagA", "delay-key")
    m.delivery_timestamp = due_s
    sent = p.send(m)
    got, _ = receive_one(consumer, 30, 15)
    at = now_ms()
    result("received", got is not None)
    if got is not None:
        consumer.ack(got)
        result("id_matches", got.message_id == sent.message_id)
        result("delivery_timestamp_matches", got.delivery_timestamp == due_s * 1000)
        result("lateness_ms", at - due_s * 1000)
    p.shutdown()
    consumer.shutdown()


class Checker(TransactionChecker):
    """Commits the message whose local transaction was left unknown; notes every check."""

    def __init__(self):
        self.checked = []
        self.lock = threading.Lock()

    def check(self, message):
        label = message.body.decode()
        with self.lock:
            self.checked.append((label, now_ms()))
        return TransactionResolution.COMMIT if label == "unknown" else TransactionResolution.ROLLBACK


def transaction(a):
    """Three transactions: committed (delivered), rolled back (never delivered), and one left
    unknown that the server's check (over Telemetry) resolves to commit (delivered then)."""
    consumer = simple_consumer(a)
    checker = Checker()
    p = producer(a, checker)
    for label in ("commit", "rollback", "unknown"):
        t = p.begin_transaction()
        p.send(message(a, label.encode(), "TagA", f"tx-{label}"), t)
        if label == "commit":
            t.commit()
        elif label == "rollback":
            t.rollback()
    received = []

    def take(m):
        received.append((m.body.decode(), now_ms()))
        consumer.ack(m)
        return {"commit", "unknown"} <= {label for label, _ in received}

    receive_for(consumer, a.int("seconds", 60), 15, take)
    # One more long poll: a rolled-back message would have been delivered long before this.
    receive_for(consumer, AWAIT_S, 15, lambda m: take(m) and False)
    result("received", ",".join(sorted(label for label, _ in received)))
    with checker.lock:
        checked = list(checker.checked)
    result("checked", ",".join(sorted({label for label, _ in checked})))
    result("checks", len(checked))
    unknown_at = [at for label, at in received if label == "unknown"]
    first_check = min((at for label, at in checked if label == "unknown"), default=None)
    result("unknown_delivered_after_check",
           bool(unknown_at) and first_check is not None and unknown_at[0] >= first_check)
    p.shutdown()
    consumer.shutdown()


class FailingOnce(MessageListener):
    """Fails the first delivery of the message with index `fail_index`; notes every one."""

    def __init__(self, fail_index):
        self.fail_index = fail_index
        self.deliveries = []
        self.lock = threading.Lock()

    def consume(self, message):
        index = int(message.properties.get("index", "-1"))
        with self.lock:
            self.deliveries.append((message.message_id, index, message.delivery_attempt))
            first = sum(1 for _, i, _ in self.deliveries if i == index) == 1
        if index == self.fail_index and first:
            return ConsumeResult.FAILURE
        return ConsumeResult.SUCCESS


def push(a):
    """A push consumer gets 100 messages; its listener fails the first delivery of one, which
    comes back as attempt 2 and is then consumed."""
    count = a.int("count", 100)
    fail_index = a.int("fail_index", 7)
    listener = FailingOnce(fail_index)
    # Start-up waits (10 s at most) for the server's settings over Telemetry.
    consumer = PushConsumer(config(a), a.get("group"), listener,
                            {a.get("topic"): FilterExpression("*")})
    consumer.startup()
    p = producer(a)
    ids = set()
    for i in range(count):
        ids.add(p.send(message(a, f"push {i}".encode(), "TagA", f"push-{i}",
                               {"index": str(i)})).message_id)

    def done():
        with listener.lock:
            d = list(listener.deliveries)
        return ids <= {mid for mid, _, _ in d} and sum(1 for _, i, _ in d if i == fail_index) >= 2

    deadline = time.time() + a.int("seconds", 90)
    while not done() and time.time() < deadline:
        time.sleep(0.1)
    # A little longer, so a delivery too many would be counted.
    time.sleep(3)
    with listener.lock:
        d = list(listener.deliveries)
    result("distinct", len({mid for mid, _, _ in d}))
    result("deliveries", len(d))
    result("failed_attempts", ",".join(str(att) for _, i, att in d if i == fail_index))
    result("other_attempts", ",".join(sorted({str(att) for _, i, att in d if i != fail_index})))
    result("digest_ok", sum(1 for mid in {mid for mid, _, _ in d}
                            if DIGESTS.get(mid) is not None and DIGESTS[mid][0] != 0))
    p.shutdown()
    consumer.shutdown()


SCENARIOS = {f.__name__: f for f in (normal, redeliver, fifo, delay, transaction, push)}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in SCENARIOS:
        print(f"usage: scenario.py <{'|'.join(sorted(SCENARIOS))}> endpoint=HOST:PORT "
              "topic=T group=G [key=value...]", file=sys.stderr)
        os._exit(2)
    name = sys.argv[1]
    code = 0
    try:
        SCENARIOS[name](Args(sys.argv[2:]))
        print(f"PASSED {name}")
    except BaseException as e:  # noqa: B036 - any failure, SystemExit included, is reported
        print(f"FAILED {name}: {e!r}")
        traceback.print_exc(file=sys.stdout)
        code = 1
    sys.stdout.flush()
    # The client's scheduler and gRPC threads may outlive shutdown(): leave without them.
    os._exit(code)


if __name__ == "__main__":
    main()

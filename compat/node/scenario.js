'use strict';
// Scenarios that drive the official RocketMQ 5.x Node.js client (npm rocketmq-client-nodejs,
// gRPC) against Petrel's gRPC endpoint:
//
//   node scenario.js <name> endpoint=HOST:PORT topic=T group=G [key=value...]
//
// The cargo test creates the topic and the group first. A scenario runs its clients to the
// end and prints what it saw as `RESULT key=value` lines, one fact a line; the cargo test
// asserts them. `PASSED <name>` (exit 0) says the scenario ran to its end, `FAILED <name>:
// <why>` (exit 1) that a client call threw. The client's log goes to stderr.

const util = require('node:util');
const {
  Producer, SimpleConsumer, PushConsumer, ConsumeResult,
} = require('rocketmq-client-nodejs');
// Not re-exported by the package's index; the generated protobuf module is part of it.
const pb = require('rocketmq-client-nodejs/proto/apache/rocketmq/v2/definition_pb');

// The client keeps no body digest on the messages it hands out (only `corrupted`), so the
// digest each message arrived with is noted here, by message id, as the client reads it off
// the wire. This observes; it changes nothing.
const DIGESTS = new Map();
const getBodyDigest = pb.SystemProperties.prototype.getBodyDigest;
pb.SystemProperties.prototype.getBodyDigest = function() {
  const d = getBodyDigest.call(this);
  DIGESTS.set(this.getMessageId(), d ? { type: d.getType(), checksum: d.getChecksum() } : null);
  return d;
};

// Long-polling window of every receive: the Apache proxy's smallest.
const AWAIT_MS = 5000;

// The client's own log, on stderr (the default writes to ~/logs/rocketmq). `debug` is
// optional in its ILogger, but Transaction.commit calls it unconditionally.
const logger = {
  info: (...args) => console.error('INFO', util.format(...args)),
  warn: (...args) => console.error('WARN', util.format(...args)),
  error: (...args) => console.error('ERROR', util.format(...args)),
  debug: () => {},
};

class Args {
  constructor(argv) {
    this.opts = new Map();
    for (const kv of argv) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error(`not key=value: ${kv}`);
      this.opts.set(kv.slice(0, eq), kv.slice(eq + 1));
    }
  }

  get(key, otherwise) {
    const v = this.opts.has(key) ? this.opts.get(key) : otherwise;
    if (v === undefined) throw new Error(`missing option ${key}=...`);
    return v;
  }

  int(key, otherwise) {
    return parseInt(this.get(key, String(otherwise)), 10);
  }
}

function result(key, value) {
  console.log(`RESULT ${key}=${value}`);
}

function options(a) {
  // sslEnabled false: plaintext h2c. No session credentials: no ACL in these tests.
  return {
    endpoints: a.get('endpoint'), namespace: '', sslEnabled: false, requestTimeout: 10000, logger,
  };
}

async function producer(a, checker) {
  // The topic is named up front: start-up fetches its route and waits for the server's
  // settings, and the settings name it, which is how a transaction check finds the producer.
  const p = new Producer({ ...options(a), topics: [ a.get('topic') ], checker });
  await p.startup();
  return p;
}

async function simpleConsumer(a, tag = '*') {
  const c = new SimpleConsumer({
    ...options(a),
    consumerGroup: a.get('group'),
    subscriptions: new Map([[ a.get('topic'), tag ]]),
    awaitDuration: AWAIT_MS,
  });
  await c.startup();
  return c;
}

function message(a, body, tag, key, props, group) {
  const m = { topic: a.get('topic'), body: Buffer.from(body), tag, keys: key ? [ key ] : [] };
  if (props) m.properties = new Map(Object.entries(props));
  if (group) m.messageGroup = group;
  return m;
}

// The message arrived with a body digest of a known type that matched its body.
function digestOk(m) {
  const d = DIGESTS.get(m.messageId);
  return !!d && d.type !== pb.DigestType.DIGEST_TYPE_UNSPECIFIED && !m.corrupted;
}

// Receives (handing each message to `onMessage`) until `ms` pass or `onMessage` returns true.
async function receiveFor(consumer, ms, invisibleMs, onMessage) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    for (const m of await consumer.receive(32, invisibleMs)) {
      if (await onMessage(m)) return;
    }
  }
}

function sameMap(map, obj) {
  const want = Object.entries(obj);
  return map.size === want.length && want.every(([ k, v ]) => map.get(k) === v);
}

const scenarios = {
  // 1,000 messages with tag TagA (plus 100 TagB the consumer must not get), each with its
  // key, user property and body, received and acked by a simple consumer filtering TagA.
  async normal(a) {
    const count = a.int('count', 1000);
    const invisibleMs = a.int('invisible', 15) * 1000;
    const consumer = await simpleConsumer(a, 'TagA');
    const p = await producer(a);
    const expected = new Map();
    let other = 0;
    for (let i = 0; i < count; i++) {
      const body = `normal ${i} ` + 'x'.repeat(i % 100);
      const r = await p.send(message(a, body, 'TagA', `key-${i}`, { index: String(i) }));
      expected.set(r.messageId, { i, body });
      if (i % 10 === 9) {
        await p.send(message(a, `other ${i}`, 'TagB', `other-${i}`));
        other++;
      }
    }
    result('sent', expected.size);
    result('sent_other_tag', other);

    const seen = new Map();
    const stats = {
      received: 0, mismatched: 0, other_tag: 0, unknown: 0, first_attempt: 0, digest_ok: 0, acked: 0,
    };
    let wanted = 0;
    await receiveFor(consumer, a.int('seconds', 90) * 1000, invisibleMs, async m => {
      stats.received++;
      const want = expected.get(m.messageId);
      if (m.tag !== 'TagA') {
        stats.other_tag++;
      } else if (!want) {
        stats.unknown++;
      } else {
        const same = m.body.toString() === want.body && m.keys.length === 1 &&
          m.keys[0] === `key-${want.i}` && sameMap(m.properties, { index: String(want.i) }) &&
          m.topic === a.get('topic');
        if (!same) {
          stats.mismatched++;
          console.log(`mismatch ${m.messageId}: body=${m.body} tag=${m.tag} keys=${m.keys} ` +
            `properties=${JSON.stringify([ ...m.properties ])}`);
        }
      }
      if (m.deliveryAttempt === 1) stats.first_attempt++;
      if (digestOk(m)) stats.digest_ok++;
      if (!seen.has(m.messageId) && want) wanted++;
      seen.set(m.messageId, (seen.get(m.messageId) || 0) + 1);
      await consumer.ack(m);
      stats.acked++;
      return wanted === expected.size;
    });
    result('distinct', seen.size);
    for (const [ k, v ] of Object.entries(stats)) result(k, v);
    await p.shutdown();
    await consumer.shutdown();
  },

  // One message received and not acked comes back after its invisible time, as attempt 2;
  // acked then, it does not come back.
  async redeliver(a) {
    const invisibleMs = a.int('invisible', 10) * 1000;
    const consumer = await simpleConsumer(a);
    const p = await producer(a);
    const sent = await p.send(message(a, 'redeliver me', 'TagA', 'redeliver-key'));
    const [ first, firstBegan ] = await receiveOne(consumer, 30000, invisibleMs);
    result('first_received', !!first);
    result('first_id_matches', !!first && first.messageId === sent.messageId);
    result('first_attempt', first ? first.deliveryAttempt : undefined);
    const [ second ] = await receiveOne(consumer, invisibleMs + 30000, invisibleMs);
    const backMs = Date.now();
    result('second_received', !!second);
    if (second) {
      result('second_id_matches', second.messageId === sent.messageId);
      result('second_attempt', second.deliveryAttempt);
      result('second_body_matches', second.body.toString() === 'redeliver me');
      result('redelivered_after_ms', backMs - firstBegan);
      await consumer.ack(second);
      result('acked', true);
      // Long enough for a redelivery had the ack been lost: one more invisible time.
      let later = 0;
      await receiveFor(consumer, invisibleMs + 3000, invisibleMs, () => { later++; return false; });
      result('after_ack', later);
    }
    await p.shutdown();
    await consumer.shutdown();
  },

  // 3 message groups x 10 messages, sent interleaved; a consumer of a FIFO group gets each
  // group's messages in the order they were sent.
  async fifo(a) {
    const groups = a.int('groups', 3);
    const perGroup = a.int('per_group', 10);
    const consumer = await simpleConsumer(a);
    const p = await producer(a);
    for (let seq = 0; seq < perGroup; seq++) {
      for (let g = 0; g < groups; g++) {
        await p.send(message(a, `mg${g}:${seq}`, 'TagA', `mg${g}-${seq}`, undefined, `mg${g}`));
      }
    }
    const order = new Map();
    for (let g = 0; g < groups; g++) order.set(`mg${g}`, []);
    const stats = { received: 0, group_mismatched: 0 };
    await receiveFor(consumer, a.int('seconds', 60) * 1000, 15000, async m => {
      stats.received++;
      const [ g, seq ] = m.body.toString().split(':');
      if (m.messageGroup !== g) stats.group_mismatched++;
      if (!order.has(g)) order.set(g, []);
      order.get(g).push(Number(seq));
      await consumer.ack(m);
      return stats.received >= groups * perGroup;
    });
    // The route says a FIFO topic takes FIFO messages only: the producer itself refuses one
    // without a message group.
    try {
      await p.send(message(a, 'plain', 'TagA', 'plain-key'));
      result('plain_refused', false);
    } catch (e) {
      console.log(`plain message refused: ${e}`);
      result('plain_refused', /message type/i.test(String(e && e.message)));
    }
    for (const g of [ ...order.keys() ].sort()) result(`order_${g}`, order.get(g).join(','));
    for (const [ k, v ] of Object.entries(stats)) result(k, v);
    await p.shutdown();
    await consumer.shutdown();
  },

  // A message due 3 s from now is not delivered before it is due, and is delivered soon after.
  async delay(a) {
    const consumer = await simpleConsumer(a);
    const p = await producer(a);
    const due = new Date(Date.now() + a.int('delay', 3) * 1000);
    const m = message(a, 'later', 'TagA', 'delay-key');
    m.deliveryTimestamp = due;
    const sent = await p.send(m);
    const [ got ] = await receiveOne(consumer, 30000, 15000);
    const at = Date.now();
    result('received', !!got);
    if (got) {
      await consumer.ack(got);
      result('id_matches', got.messageId === sent.messageId);
      result('delivery_timestamp_matches', !!got.deliveryTimestamp && got.deliveryTimestamp.getTime() === due.getTime());
      result('lateness_ms', at - due.getTime());
    }
    await p.shutdown();
    await consumer.shutdown();
  },

  // Three transactions: committed (delivered), rolled back (never delivered), and one left
  // unknown that the server's check (over Telemetry) resolves to commit (delivered then).
  async transaction(a) {
    const consumer = await simpleConsumer(a);
    const checked = [];
    const checker = {
      async check(view) {
        const label = view.body.toString();
        checked.push([ label, Date.now() ]);
        return label === 'unknown' ? pb.TransactionResolution.COMMIT : pb.TransactionResolution.ROLLBACK;
      },
    };
    const p = await producer(a, checker);
    for (const label of [ 'commit', 'rollback', 'unknown' ]) {
      const t = p.beginTransaction();
      await p.send(message(a, label, 'TagA', `tx-${label}`), t);
      if (label === 'commit') await t.commit();
      if (label === 'rollback') await t.rollback();
    }
    const received = [];
    const take = async m => {
      received.push([ m.body.toString(), Date.now() ]);
      await consumer.ack(m);
      const labels = new Set(received.map(([ l ]) => l));
      return labels.has('commit') && labels.has('unknown');
    };
    await receiveFor(consumer, a.int('seconds', 60) * 1000, 15000, take);
    // One more long poll: a rolled-back message would have been delivered long before this.
    await receiveFor(consumer, AWAIT_MS, 15000, async m => { await take(m); return false; });
    result('received', received.map(([ l ]) => l).sort().join(','));
    result('checked', [ ...new Set(checked.map(([ l ]) => l)) ].sort().join(','));
    result('checks', checked.length);
    const unknownAt = received.filter(([ l ]) => l === 'unknown').map(([ , at ]) => at);
    const checkAt = checked.filter(([ l ]) => l === 'unknown').map(([ , at ]) => at);
    result('unknown_delivered_after_check',
      unknownAt.length > 0 && checkAt.length > 0 && unknownAt[0] >= Math.min(...checkAt));
    await p.shutdown();
    await consumer.shutdown();
  },

  // A push consumer gets 100 messages; its listener fails the first delivery of one, which
  // comes back as attempt 2 and is then consumed.
  async push(a) {
    const count = a.int('count', 100);
    const failIndex = a.int('fail_index', 7);
    const deliveries = [];
    const consumer = new PushConsumer({
      ...options(a),
      consumerGroup: a.get('group'),
      subscriptions: new Map([[ a.get('topic'), '*' ]]),
      messageListener: {
        consume(m) {
          const index = Number(m.properties.get('index'));
          deliveries.push([ m.messageId, index, m.deliveryAttempt ]);
          const first = deliveries.filter(([ , i ]) => i === index).length === 1;
          return index === failIndex && first ? ConsumeResult.FAILURE : ConsumeResult.SUCCESS;
        },
      },
    });
    await consumer.startup();
    const p = await producer(a);
    const ids = new Set();
    for (let i = 0; i < count; i++) {
      ids.add((await p.send(message(a, `push ${i}`, 'TagA', `push-${i}`, { index: String(i) }))).messageId);
    }
    const done = () => {
      const got = new Set(deliveries.map(([ id ]) => id));
      return [ ...ids ].every(id => got.has(id)) &&
        deliveries.filter(([ , i ]) => i === failIndex).length >= 2;
    };
    const deadline = Date.now() + a.int('seconds', 90) * 1000;
    while (!done() && Date.now() < deadline) await sleep(100);
    // A little longer, so a delivery too many would be counted.
    await sleep(3000);
    result('distinct', new Set(deliveries.map(([ id ]) => id)).size);
    result('deliveries', deliveries.length);
    result('failed_attempts', deliveries.filter(([ , i ]) => i === failIndex).map(([ , , att ]) => att).join(','));
    result('other_attempts', [ ...new Set(deliveries.filter(([ , i ]) => i !== failIndex).map(([ , , att ]) => String(att))) ].sort().join(','));
    await p.shutdown();
    await consumer.shutdown();
  },
};

function sleep(ms) {
  return new Promise(resolve => setTimeout(resolve, ms));
}

// The first message received within `ms`, and when the receive that got it began.
async function receiveOne(consumer, ms, invisibleMs) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const began = Date.now();
    const msgs = await consumer.receive(1, invisibleMs);
    if (msgs.length > 0) return [ msgs[0], began ];
  }
  return [ undefined, undefined ];
}

async function main() {
  const name = process.argv[2];
  if (!scenarios[name]) {
    console.error(`usage: node scenario.js <${Object.keys(scenarios).sort().join('|')}> ` +
      'endpoint=HOST:PORT topic=T group=G [key=value...]');
    process.exit(2);
  }
  let code = 0;
  try {
    await scenarios[name](new Args(process.argv.slice(3)));
    console.log(`PASSED ${name}`);
  } catch (e) {
    console.log(`FAILED ${name}: ${e && e.stack ? e.stack : e}`);
    if (e && e.cause) console.log(`caused by: ${e.cause.stack || e.cause}`);
    code = 1;
  }
  // The client's timers and gRPC channels may outlive shutdown(): leave without them.
  process.exit(code);
}

main();

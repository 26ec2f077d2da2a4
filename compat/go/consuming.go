package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// rebalanceSettle is how long the scenarios with two consumers of one group wait after
// starting them before sending: the second one's heartbeat makes the broker tell the first
// (NOTIFY_CONSUMER_IDS_CHANGED), and both rebalance at once; without that notice the first
// would keep every queue until its next periodic rebalance (20 s) and both would consume
// the same queues. Petrel holds that notice for 5 s after its own start: run these
// scenarios on a broker up for longer.
const rebalanceSettle = 3 * time.Second

// clustering: two push consumers of one group on a topic with 4 queues split the queues
// between them: every message is consumed exactly once, each consumer gets some, and no
// queue is consumed by both.
func clustering(args Args) {
	topic := args.Name("ClusterTopic")
	group := args.Name("ClusterGroup")
	const queues, n = 4, 40
	createTopic(args, topic, queues)

	var mu sync.Mutex
	byKey := map[string][]string{}
	queuesOf := map[string]map[int]bool{"A": {}, "B": {}}
	var bad problems
	var consumers []interface{ Shutdown() error }
	for _, name := range []string{"A", "B"} {
		name := name
		c := newPushConsumer(args, group)
		err := c.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
			func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range msgs {
					if string(m.Body) != "body "+m.GetKeys() {
						bad.add("message %s has body %q", m.GetKeys(), m.Body)
					}
					byKey[m.GetKeys()] = append(byKey[m.GetKeys()], name)
					queuesOf[name][m.Queue.QueueId] = true
				}
				return consumer.ConsumeSuccess, nil
			})
		checkNoErr(err, "subscribe "+name)
		checkNoErr(c.Start(), "start consumer "+name)
		consumers = append(consumers, c)
	}
	time.Sleep(rebalanceSettle)

	p := newProducer(args, args.Name("ClusterProducer"))
	consumers = append(consumers, p)
	sentTo := map[int]bool{}
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("c-%d", i)
		m := primitive.NewMessage(topic, []byte("body "+key))
		m.WithKeys([]string{key})
		sentTo[sendOK(p, m, key).MessageQueue.QueueId] = true
	}
	checkEqual(queues, len(sentTo), "queues the round-robin producer sent to")
	waitFor(fmt.Sprintf("%d messages between both consumers", n), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(byKey) >= n || bad.any()
	})
	time.Sleep(500 * time.Millisecond)
	bad.check()
	func() {
		mu.Lock()
		defer mu.Unlock()
		checkEqual(n, len(byKey), "distinct keys consumed")
		for key, who := range byKey {
			checkEqual(1, len(who), fmt.Sprintf("consumers of %s (%v)", key, who))
		}
		fmt.Printf("RESULT queues_A=%v\n", sortedKeys(queuesOf["A"]))
		fmt.Printf("RESULT queues_B=%v\n", sortedKeys(queuesOf["B"]))
		checkf(len(queuesOf["A"]) > 0 && len(queuesOf["B"]) > 0,
			"one consumer got every message: A from queues %v, B from %v", sortedKeys(queuesOf["A"]), sortedKeys(queuesOf["B"]))
		for q := range queuesOf["A"] {
			checkf(!queuesOf["B"][q], "queue %d consumed by both consumers", q)
		}
		checkEqual(queues, len(queuesOf["A"])+len(queuesOf["B"]), "queues consumed")
	}()
	shutdownAll(consumers...)
}

func sortedKeys(m map[int]bool) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

// orderly: messages of 8 keys, interleaved, sent with the client's hash queue selector on
// the sharding key: every key stays on one queue, and an orderly consumer (which locks its
// queues at the broker before consuming) gets each key's messages exactly once, in the order
// they were sent.
func orderly(args Args) {
	topic := args.Name("OrderTopic")
	const queues, keys, perKey = 4, 8, 25
	createTopic(args, topic, queues)
	p := newProducer(args, args.Name("OrderProducer"), producer.WithQueueSelector(producer.NewHashQueueSelector()))
	queueOf := map[string]int{}
	for seq := 0; seq < perKey; seq++ {
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("order-%d", k)
			m := primitive.NewMessage(topic, []byte(fmt.Sprintf("%s:%d", key, seq)))
			m.WithShardingKey(key)
			m.WithKeys([]string{fmt.Sprintf("%s-%d", key, seq)})
			m.WithProperty("okey", key)
			m.WithProperty("seq", strconv.Itoa(seq))
			q := sendOK(p, m, key).MessageQueue.QueueId
			if seq == 0 {
				queueOf[key] = q
			}
			checkEqual(queueOf[key], q, fmt.Sprintf("queue of %s message %d", key, seq))
		}
	}
	used := map[int]bool{}
	for _, q := range queueOf {
		used[q] = true
	}
	fmt.Printf("RESULT queues_used=%v\n", sortedKeys(used))
	checkf(len(used) > 1, "every key hashed to one queue %v: the order would hold trivially", sortedKeys(used))

	var mu sync.Mutex
	seqs := map[string][]int{}
	total := 0
	var bad problems
	c := newPushConsumer(args, args.Name("OrderGroup"), consumer.WithConsumerOrder(true))
	err := c.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
		func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			if _, ok := primitive.GetOrderlyCtx(ctx); !ok {
				bad.add("a delivery without the orderly context")
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				key := m.GetProperty("okey")
				seq, err := strconv.Atoi(m.GetProperty("seq"))
				if err != nil || string(m.Body) != fmt.Sprintf("%s:%d", key, seq) {
					bad.add("message %s has properties %v and body %q", m.GetKeys(), m.GetProperties(), m.Body)
				}
				if m.Queue.QueueId != queueOf[key] {
					bad.add("message %s came from queue %d, sent to %d", m.GetKeys(), m.Queue.QueueId, queueOf[key])
				}
				seqs[key] = append(seqs[key], seq)
				total++
			}
			return consumer.ConsumeSuccess, nil
		})
	checkNoErr(err, "subscribe")
	checkNoErr(c.Start(), "start orderly consumer")
	waitFor(fmt.Sprintf("%d messages in order", keys*perKey), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return total >= keys*perKey || bad.any()
	})
	time.Sleep(500 * time.Millisecond)
	bad.check()
	func() {
		mu.Lock()
		defer mu.Unlock()
		want := make([]int, perKey)
		for i := range want {
			want[i] = i
		}
		for key := range queueOf {
			checkEqual(want, seqs[key], "sequence numbers of "+key+" in consumption order")
		}
		checkEqual(keys*perKey, total, "deliveries")
	}()
	shutdownAll(c, p)
}

// retryLater: a concurrent consumer that answers ConsumeRetryLater twice for each message
// gets it back from the broker (through %RETRY%<group>, after the delay of level 3, then 4)
// with ReconsumeTimes 1, then 2, and the same id, topic, tags, properties and body; once it
// succeeds the message does not come again. Run against Petrel with short delay levels.
func retryLater(args Args) {
	topic := args.Name("RetryTopic")
	group := args.Name("RetryGroup")
	const n, failures = 5, 2
	// The Petrel the cargo test starts has level 3 = 300 ms and level 4 = 400 ms.
	minGap := []time.Duration{300 * time.Millisecond, 400 * time.Millisecond}
	createTopic(args, topic, 4)
	p := newProducer(args, args.Name("RetryProducer"))
	ids := map[string]string{}
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("r-%d", i)
		m := primitive.NewMessage(topic, []byte("body "+key))
		m.WithTag("T")
		m.WithKeys([]string{key})
		m.WithProperty("color", "blue")
		ids[key] = sendOK(p, m, key).MsgID
	}

	type delivery struct {
		reconsumeTimes int32
		queueTopic     string
		at             time.Time
	}
	var mu sync.Mutex
	got := map[string][]delivery{}
	var bad problems
	c := newPushConsumer(args, group)
	err := c.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "T"},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			result := consumer.ConsumeSuccess
			for _, m := range msgs {
				key := m.GetKeys()
				if m.Topic != topic || m.GetTags() != "T" || m.GetProperty("color") != "blue" || string(m.Body) != "body "+key {
					bad.add("delivery %d of %s: topic %q, tags %q, properties %v, body %q",
						len(got[key]), key, m.Topic, m.GetTags(), m.GetProperties(), m.Body)
				}
				if m.MsgId != ids[key] {
					bad.add("delivery %d of %s has id %s, sent as %s", len(got[key]), key, m.MsgId, ids[key])
				}
				got[key] = append(got[key], delivery{m.ReconsumeTimes, m.Queue.Topic, time.Now()})
				if m.ReconsumeTimes < failures {
					result = consumer.ConsumeRetryLater
				}
			}
			return result, nil
		})
	checkNoErr(err, "subscribe")
	start := time.Now()
	checkNoErr(c.Start(), "start consumer")
	// The retry topic is created by the consumer's first heartbeat, after the client looked up
	// its routes at start; it finds the route at its next lookup (every 30 s) and starts
	// pulling there at its next rebalance (every 20 s).
	waitWithin(2*Wait, fmt.Sprintf("%d deliveries of each of %d messages", failures+1, n), func() bool {
		mu.Lock()
		defer mu.Unlock()
		if bad.any() {
			return true
		}
		for key := range ids {
			if len(got[key]) < failures+1 {
				return false
			}
		}
		return true
	})
	fmt.Printf("RESULT all_retried_after_ms=%d\n", time.Since(start).Milliseconds())
	// Anything more (a success redelivered, a retry the client also did itself) would follow
	// within a delay level or two.
	time.Sleep(1500 * time.Millisecond)
	bad.check()
	func() {
		mu.Lock()
		defer mu.Unlock()
		retryTopic := "%RETRY%" + group
		for key := range ids {
			ds := got[key]
			checkf(len(ds) == failures+1, "deliveries of %s: want %d, got %d: %+v", key, failures+1, len(ds), ds)
			for i, d := range ds {
				checkEqual(int32(i), d.reconsumeTimes, fmt.Sprintf("ReconsumeTimes of delivery %d of %s", i, key))
				from := topic
				if i > 0 {
					from = retryTopic
					gap := d.at.Sub(ds[i-1].at)
					checkf(gap >= minGap[i-1], "delivery %d of %s came %v after the failure, before the %v of its delay level",
						i, key, gap, minGap[i-1])
				}
				checkEqual(from, d.queueTopic, fmt.Sprintf("queue topic of delivery %d of %s", i, key))
			}
		}
	}()
	shutdownAll(c, p)
}

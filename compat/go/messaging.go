package main

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// syncBody is message i's body: every byte value for the first, a body over the producer's
// 4 KiB compression threshold for the second (sent zlib-compressed with the compressed
// system flag), short text for the rest.
func syncBody(i int) []byte {
	switch i {
	case 0:
		b := make([]byte, 256)
		for j := range b {
			b[j] = byte(j)
		}
		return b
	case 1:
		return bytes.Repeat([]byte("compressible "), 1000)
	default:
		return []byte(fmt.Sprintf("body %d", i))
	}
}

// sendSync: SendSync to a topic the broker creates on first use answers SEND_OK with a
// message id and consecutive offsets per queue; a consumer then gets every message exactly
// once, with its body, message id, queue and offset as the send result said.
func sendSync(args Args) {
	topic := args.Name("SyncTopic")
	const n = 20
	p := newProducer(args, args.Name("SyncProducer"))
	sent := map[string]*primitive.SendResult{}
	perQueue := map[int][]int64{}
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("k-%d", i)
		m := primitive.NewMessage(topic, syncBody(i))
		m.WithKeys([]string{key})
		r := sendOK(p, m, key)
		sent[key] = r
		perQueue[r.MessageQueue.QueueId] = append(perQueue[r.MessageQueue.QueueId], r.QueueOffset)
	}
	for q, offsets := range perQueue {
		for j, off := range offsets {
			checkEqual(int64(j), off, fmt.Sprintf("offset of send %d to queue %d", j, q))
		}
	}
	fmt.Printf("RESULT queues=%d\n", len(perQueue))
	// Petrel publishes a topic created by a send to the name server in the background while it
	// answers (a RocketMQ broker registers before it answers), so a consumer started at once
	// could miss the route.
	waitRouted(args, topic, len(perQueue))

	type delivery struct {
		body    []byte
		msgID   string
		queueID int
		offset  int64
	}
	var mu sync.Mutex
	got := map[string][]delivery{}
	var bad problems
	c := newPushConsumer(args, args.Name("SyncGroup"))
	err := c.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
		func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				if m.Topic != topic {
					bad.add("message %s has topic %q", m.GetKeys(), m.Topic)
				}
				got[m.GetKeys()] = append(got[m.GetKeys()], delivery{m.Body, m.MsgId, m.Queue.QueueId, m.QueueOffset})
			}
			return consumer.ConsumeSuccess, nil
		})
	checkNoErr(err, "subscribe")
	checkNoErr(c.Start(), "start consumer")
	waitFor(fmt.Sprintf("%d messages", n), func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= n || bad.any()
	})
	// A duplicate or a stray would come with the rest; give it a moment.
	time.Sleep(500 * time.Millisecond)
	bad.check()
	func() {
		mu.Lock()
		defer mu.Unlock()
		checkEqual(n, len(got), "distinct keys consumed")
		for key, r := range sent {
			ds := got[key]
			checkEqual(1, len(ds), "deliveries of "+key)
			d := ds[0]
			i, _ := strconv.Atoi(strings.TrimPrefix(key, "k-"))
			checkf(bytes.Equal(syncBody(i), d.body), "body of %s: sent %d bytes, got %d: %q", key, len(syncBody(i)), len(d.body), d.body)
			checkEqual(r.MsgID, d.msgID, "message id of "+key)
			checkEqual(r.MessageQueue.QueueId, d.queueID, "queue of "+key)
			checkEqual(r.QueueOffset, d.offset, "queue offset of "+key)
		}
	}()
	shutdownAll(c, p)
}

// tagSubscriptions: messages tagged A, B and C, each with a key and user properties;
// consumers subscribed to "A", "A || C" and "*" each get exactly their messages, with tags,
// keys, properties and bodies as sent.
func tagSubscriptions(args Args) {
	topic := args.Name("TagTopic")
	const perTag = 10
	tags := []string{"A", "B", "C"}
	keysOf := func(tags ...string) []string {
		var ks []string
		for _, t := range tags {
			for i := 0; i < perTag; i++ {
				ks = append(ks, fmt.Sprintf("%s-%d", t, i))
			}
		}
		sort.Strings(ks)
		return ks
	}
	want := map[string][]string{
		"A":      keysOf("A"),
		"A || C": keysOf("A", "C"),
		"*":      keysOf("A", "B", "C"),
	}
	createTopic(args, topic, 4)
	p := newProducer(args, args.Name("TagProducer"))
	for _, tag := range tags {
		for i := 0; i < perTag; i++ {
			key := fmt.Sprintf("%s-%d", tag, i)
			m := primitive.NewMessage(topic, []byte(fmt.Sprintf("body %s%d", tag, i)))
			m.WithTag(tag)
			m.WithKeys([]string{key})
			m.WithProperty("color", "blue")
			m.WithProperty("seq", strconv.Itoa(i))
			sendOK(p, m, key)
		}
	}

	var mu sync.Mutex
	got := map[string]map[string]int{}
	var bad problems
	var consumers []interface{ Shutdown() error }
	n := 0
	for expr := range want {
		expr := expr
		got[expr] = map[string]int{}
		c := newPushConsumer(args, args.Name(fmt.Sprintf("TagGroup%d", n)))
		n++
		err := c.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: expr},
			func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range msgs {
					key := m.GetKeys()
					tag, seq, _ := strings.Cut(key, "-")
					if m.GetTags() != tag {
						bad.add("%s: message %s has tags %q", expr, key, m.GetTags())
					}
					if m.GetProperty("color") != "blue" || m.GetProperty("seq") != seq {
						bad.add("%s: message %s has properties %v", expr, key, m.GetProperties())
					}
					if string(m.Body) != "body "+tag+seq {
						bad.add("%s: message %s has body %q", expr, key, m.Body)
					}
					got[expr][key]++
				}
				return consumer.ConsumeSuccess, nil
			})
		checkNoErr(err, "subscribe "+expr)
		checkNoErr(c.Start(), "start consumer of "+expr)
		consumers = append(consumers, c)
	}
	for expr, keys := range want {
		expr, keys := expr, keys
		waitFor(fmt.Sprintf("subscription %q to get %d messages", expr, len(keys)), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got[expr]) >= len(keys) || bad.any()
		})
	}
	time.Sleep(500 * time.Millisecond)
	bad.check()
	func() {
		mu.Lock()
		defer mu.Unlock()
		for expr, keys := range want {
			var delivered []string
			for k, times := range got[expr] {
				checkEqual(1, times, fmt.Sprintf("deliveries of %s to %q", k, expr))
				delivered = append(delivered, k)
			}
			sort.Strings(delivered)
			checkEqual(keys, delivered, fmt.Sprintf("keys delivered to %q", expr))
		}
	}()
	shutdownAll(append(consumers, p)...)
}

package main

import (
	"context"
	"fmt"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// instance is a client instance name of its own: the Go client shares one connection set per
// ip@instance, and two consumers of one group in one process must be two clients.
func instance(group string) string {
	return fmt.Sprintf("%s_%d", group, time.Now().UnixNano())
}

// newProducer is a started producer of group; opts come after the defaults and win. The VIP
// channel (broker port - 2) is off: the test broker listens on an ephemeral port. A send is
// not retried and may take long: a retry of a send that only timed out on a loaded machine
// would store the message twice, and the scenarios count deliveries exactly.
func newProducer(args Args, group string, opts ...producer.Option) rocketmq.Producer {
	all := append([]producer.Option{
		producer.WithNameServer([]string{args.Namesrv()}),
		producer.WithGroupName(group),
		producer.WithInstanceName(instance(group)),
		producer.WithVIPChannel(false),
		producer.WithRetry(0),
		producer.WithSendMsgTimeout(20 * time.Second),
	}, opts...)
	p, err := rocketmq.NewProducer(all...)
	checkNoErr(err, "new producer "+group)
	checkNoErr(p.Start(), "start producer "+group)
	return p
}

// newPushConsumer is a push consumer of group, not yet subscribed or started, consuming
// from the first offset in clustering mode.
func newPushConsumer(args Args, group string, opts ...consumer.Option) rocketmq.PushConsumer {
	all := append([]consumer.Option{
		consumer.WithNameServer([]string{args.Namesrv()}),
		consumer.WithGroupName(group),
		consumer.WithInstance(instance(group)),
		consumer.WithVIPChannel(false),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	}, opts...)
	c, err := rocketmq.NewPushConsumer(all...)
	checkNoErr(err, "new push consumer "+group)
	return c
}

// createTopic creates topic with queues read and write queues on the broker (option
// broker=ADDR) with the Go client's admin, then waits until the name server routes exactly
// that many queues: the admin call itself does not look at the response code.
func createTopic(args Args, topic string, queues int) {
	a, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{args.Namesrv()})))
	checkNoErr(err, "new admin")
	defer a.Close()
	err = a.CreateTopic(context.Background(),
		admin.WithTopicCreate(topic),
		admin.WithBrokerAddrCreate(args.Get("broker")),
		admin.WithReadQueueNums(queues),
		admin.WithWriteQueueNums(queues))
	checkNoErr(err, "create topic "+topic)
	waitRouted(args, topic, queues)
}

// waitRouted waits until the name server routes queues write queues of topic, which a
// consumer's start needs.
func waitRouted(args Args, topic string, queues int) {
	a, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{args.Namesrv()})))
	checkNoErr(err, "new admin")
	defer a.Close()
	var routed []*primitive.MessageQueue
	waitFor(fmt.Sprintf("the name server to route %d queues of %s", queues, topic), func() bool {
		routed, err = a.FetchPublishMessageQueues(context.Background(), topic)
		return err == nil && len(routed) == queues
	})
}

// sendOK sends m synchronously and fails unless the broker answered SEND_OK with a message id
// and a queue of m's topic.
func sendOK(p rocketmq.Producer, m *primitive.Message, what string) *primitive.SendResult {
	r, err := p.SendSync(context.Background(), m)
	checkNoErr(err, "send "+what)
	checkEqual(primitive.SendOK, r.Status, "send status of "+what)
	checkf(r.MsgID != "", "send result of %s has no message id: %v", what, r)
	checkf(r.MessageQueue != nil && r.MessageQueue.Topic == m.Topic,
		"send result of %s names queue %v, not one of topic %s", what, r.MessageQueue, m.Topic)
	checkf(r.QueueOffset >= 0, "send result of %s has queue offset %d", what, r.QueueOffset)
	return r
}

func shutdownAll(clients ...interface{ Shutdown() error }) {
	for _, c := range clients {
		checkNoErr(c.Shutdown(), "shutdown")
	}
}

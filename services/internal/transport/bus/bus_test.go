package bus_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

func newEvent(id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("test")
	e.SetType("thing.happened")
	_ = e.SetData("application/json", map[string]string{"id": id})
	return e
}

func TestPublishDedupsByMsgID(t *testing.T) {
	s := natstest.Run(t)
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, s.JS, contract.EventsStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	subj := contract.EventSubject("acme", "thing.happened")
	a1, err := bus.PublishEvent(ctx, s.JS, subj, "m1", newEvent("1"))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := bus.PublishEvent(ctx, s.JS, subj, "m1", newEvent("1"))
	if err != nil {
		t.Fatal(err)
	}
	if a1.Duplicate || !a2.Duplicate || a1.Sequence != a2.Sequence {
		t.Fatalf("acks %+v %+v: want second to be a duplicate of the first", a1, a2)
	}
	raw, err := s.JS.Stream(ctx, contract.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	m, err := raw.GetMsg(ctx, a1.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	e, err := cenats.Decode(m.Header, m.Data)
	if err != nil || e.ID() != "1" {
		t.Fatalf("stored message decodes to %v, %v", e.ID(), err)
	}
}

// The consume loop maps nil to ack, Permanent to term and other errors to a
// delayed redelivery, and returns nil on cancel.
func TestConsumeSettles(t *testing.T) {
	s := natstest.Run(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bus.EnsureStreams(ctx, s.JS, contract.EventsStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	cons, err := s.JS.CreateOrUpdateConsumer(ctx, contract.StreamEvents, jetstream.ConsumerConfig{
		Durable: "t", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxDeliver: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ok", "perm", "flaky"} {
		if _, err := bus.PublishEvent(ctx, s.JS, contract.EventSubject("acme", "thing.happened"), id, newEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	h := func(ctx context.Context, msg jetstream.Msg) error {
		e, err := cenats.Decode(msg.Headers(), msg.Data())
		if err != nil {
			return bus.Permanent(err)
		}
		mu.Lock()
		seen[e.ID()]++
		n := seen[e.ID()]
		mu.Unlock()
		switch e.ID() {
		case "perm":
			return bus.Permanent(errors.New("bad input"))
		case "flaky":
			if n == 1 {
				return &bus.RetryAfterError{Delay: 100 * time.Millisecond, Err: errors.New("try later")}
			}
		}
		return nil
	}
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(ctx, cons, h, bus.ConsumeOptions{Workers: 2, Consumer: "t", BackOff: []time.Duration{100 * time.Millisecond}})
	}()
	natstest.Eventually(t, 15*time.Second, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if seen["flaky"] != 2 || info.NumAckPending != 0 || info.NumPending != 0 {
			return natstest.Errorf("seen %v, ack pending %d", seen, info.NumAckPending)
		}
		return nil
	})
	mu.Lock()
	if seen["ok"] != 1 || seen["perm"] != 1 {
		t.Errorf("seen %v: ok and perm must be handled once", seen)
	}
	mu.Unlock()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Consume returned %v on cancel", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Consume did not return after cancel")
	}
}

// Drain returns only once the connection is closed, with every message a
// subscription had already received handled.
func TestDrainWaitsForClose(t *testing.T) {
	t.Parallel()
	srv := natstest.Run(t)
	nc, _ := natstest.Connect(t, srv.ClientURL())
	var handled atomic.Int32
	if _, err := nc.Subscribe("drain.test", func(*nats.Msg) {
		time.Sleep(20 * time.Millisecond)
		handled.Add(1)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	const n = 10
	for range n {
		if err := srv.NC.Publish("drain.test", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, func() error {
		if handled.Load() == 0 {
			return natstest.Errorf("no message received yet")
		}
		return nil
	})
	if err := bus.Drain(nc, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if !nc.IsClosed() {
		t.Error("connection not closed when Drain returned")
	}
	if got := handled.Load(); got != n {
		t.Errorf("%d of %d received messages handled when Drain returned", got, n)
	}
}

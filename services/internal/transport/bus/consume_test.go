package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// With AckNoWait a handled message is acked without waiting for the
// server's confirmation, and the ack still lands: each message is handled
// once and nothing stays pending.
func TestConsumeAckNoWait(t *testing.T) {
	s := natstest.Run(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bus.EnsureStreams(ctx, s.JS, contract.EventsStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	cons, err := s.JS.CreateOrUpdateConsumer(ctx, contract.StreamEvents, jetstream.ConsumerConfig{
		Durable: "t", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 2 * time.Second, MaxDeliver: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		id := "m" + string(rune('A'+i%26)) + string(rune('a'+i/26))
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
		mu.Unlock()
		return nil
	}
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(ctx, cons, h, bus.ConsumeOptions{Workers: 4, Consumer: "t", AckNoWait: true})
	}()
	natstest.Eventually(t, 15*time.Second, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != n || info.NumAckPending != 0 || info.NumPending != 0 || info.AckFloor.Consumer != n {
			return natstest.Errorf("seen %d, ack pending %d, pending %d, ack floor %d", len(seen), info.NumAckPending, info.NumPending, info.AckFloor.Consumer)
		}
		return nil
	})
	// Past AckWait: an ack that was lost would show as a redelivery.
	time.Sleep(2500 * time.Millisecond)
	mu.Lock()
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s handled %d times", id, c)
		}
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

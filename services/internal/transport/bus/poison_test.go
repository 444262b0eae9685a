package bus_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// A handler that panics on one message neither stops the consume loop nor
// brings the process down: the message is copied to DEADLETTERS with the
// reason, terminated (never redelivered), counted, and every other
// message is handled.
func TestConsumeSetsPoisonAside(t *testing.T) {
	s := natstest.Run(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bus.EnsureStreams(ctx, s.JS, contract.EventsStream(contract.DefaultTopology),
		contract.DeadLettersStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	cons, err := s.JS.CreateOrUpdateConsumer(ctx, contract.StreamEvents, jetstream.ConsumerConfig{
		Durable: "t", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second, MaxDeliver: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "poison", "b", "c"} {
		if _, err := bus.PublishEvent(ctx, s.JS, contract.EventSubject("acme", "thing.happened"), id, newEvent(id)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	handled := map[string]int{}
	h := func(ctx context.Context, msg jetstream.Msg) error {
		e, err := cenats.Decode(msg.Headers(), msg.Data())
		if err != nil {
			return bus.Permanent(err)
		}
		mu.Lock()
		handled[e.ID()]++
		mu.Unlock()
		if e.ID() == "poison" {
			var m map[string]int
			m["boom"]++ // a nil-map write: the kind of bug a poison message finds
		}
		return nil
	}
	var poisoned atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(ctx, cons, h, bus.ConsumeOptions{Workers: 2, Consumer: "t", DeadLetters: s.JS,
			OnPoison: func(_ context.Context, consumer string) {
				if consumer == "t" {
					poisoned.Add(1)
				}
			}})
	}()
	dl, err := s.JS.Stream(ctx, contract.StreamDeadLetters)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 15*time.Second, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 {
			return natstest.Errorf("ack pending %d, pending %d", info.NumAckPending, info.NumPending)
		}
		dinfo, err := dl.Info(ctx)
		if err != nil {
			return err
		}
		if dinfo.State.Msgs != 1 {
			return natstest.Errorf("DEADLETTERS holds %d messages, want 1", dinfo.State.Msgs)
		}
		return nil
	})
	m, err := dl.GetLastMsgForSubject(ctx, contract.DeadLetterSubject("acme", "t"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := cenats.Decode(m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	var got payload.DeadLetter
	if err := e.DataAs(&got); err != nil {
		t.Fatal(err)
	}
	if e.Type() != payload.TypeDeadLetter || got.Consumer != "t" || got.Stream != contract.StreamEvents ||
		got.StreamSeq != 2 || got.MessageID != "poison" || got.Subject != "events.acme.thing.happened" {
		t.Errorf("dead letter %+v (type %s)", got, e.Type())
	}
	if orig, err := cenats.Decode(got.Headers, got.Data); err != nil || orig.ID() != "poison" {
		t.Errorf("the dead letter does not carry the original message: %v", err)
	}
	if got.Reason == "" {
		t.Error("dead letter without a reason")
	}
	// Past AckWait: a poison message that was not terminated would come back.
	time.Sleep(1500 * time.Millisecond)
	mu.Lock()
	for _, id := range []string{"a", "poison", "b", "c"} {
		if handled[id] != 1 {
			t.Errorf("%s handled %d times, want 1", id, handled[id])
		}
	}
	mu.Unlock()
	if n := poisoned.Load(); n != 1 {
		t.Errorf("OnPoison called %d times, want 1", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Consume returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Consume did not return after cancel")
	}
}

package bus_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// Many concurrent publishes through a Batcher are each stored once, and
// each caller's ack names the sequence that holds its own message, whether
// its batch went atomic or message by message. A batch holding a duplicate
// Nats-Msg-Id is refused by the server as a whole and published again one
// by one: the duplicate is reported as one, the rest are stored. After Run
// stops, publishes go straight to the stream.
func TestBatcherStoresEachOnceAndAcksItsOwn(t *testing.T) {
	s := natstest.Run(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bus.EnsureStreams(ctx, s.JS, contract.AttemptsStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	b := bus.NewBatcher(s.NC, s.JS, contract.StreamAttempts, 32, nil)
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	msg := func(id string) *nats.Msg {
		m := nats.NewMsg(contract.AttemptSubject("acme", "sub-1"))
		m.Header.Set(jetstream.MsgIDHeader, id)
		m.Data = []byte(id)
		return m
	}
	// A record stored before, so that later batches hold a duplicate.
	if _, err := s.JS.PublishMsg(ctx, msg("m-7")); err != nil {
		t.Fatal(err)
	}
	const n = 400
	type got struct {
		seq uint64
		dup bool
	}
	acks := make([]got, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ack, err := b.PublishMsg(ctx, msg("m-"+strconv.Itoa(i)))
			if err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			acks[i] = got{ack.Sequence, ack.Duplicate}
		}()
	}
	wg.Wait()
	st, err := s.JS.Stream(ctx, contract.StreamAttempts)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("stream holds %d records, want %d", info.State.Msgs, n)
	}
	for i, a := range acks {
		if i == 7 {
			if !a.dup {
				t.Errorf("m-7 was stored before; its ack %+v does not say duplicate", a)
			}
			continue
		}
		m, err := st.GetMsg(ctx, a.seq)
		if err != nil {
			t.Fatalf("m-%d: seq %d: %v", i, a.seq, err)
		}
		if string(m.Data) != "m-"+strconv.Itoa(i) {
			t.Errorf("ack of m-%d names seq %d, which holds %s", i, a.seq, m.Data)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	ack, err := b.PublishMsg(context.Background(), msg("after-stop"))
	if err != nil || ack.Sequence != n+1 {
		t.Fatalf("publish after stop: %+v, %v", ack, err)
	}
}

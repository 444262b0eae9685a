package bus_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natsembed"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// BenchmarkDurableWrite compares the ways to store records on a file
// stream whose every write is fsynced (sync_interval: always, the
// production setting), with 32 concurrent writers as the dispatcher and the
// collector have: each writer publishing and waiting (today's path), the
// same writers pipelining with PublishAsync, and the writers going through
// a Batcher (atomic batches, one fsync per batch). ns/op is per record.
//
//	go test -run '^$' -bench DurableWrite -benchtime 2000x ./services/internal/transport/bus
func BenchmarkDurableWrite(b *testing.B) {
	for _, sync := range []bool{true, false} {
		b.Run(fmt.Sprintf("sync_always=%v", sync), func(b *testing.B) {
			b.Run("publish-and-wait", func(b *testing.B) { benchWrite(b, sync, "wait") })
			b.Run("publish-async", func(b *testing.B) { benchWrite(b, sync, "async") })
			b.Run("batcher", func(b *testing.B) { benchWrite(b, sync, "batcher") })
		})
	}
}

func benchWrite(b *testing.B, syncAlways bool, mode string) {
	s, err := natsembed.Start(natsembed.Options{StoreDir: b.TempDir(), Port: -1, SyncAlways: syncAlways})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Shutdown)
	nc, js := natstest.Connect(b, s.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bus.EnsureStreams(ctx, js, contract.AttemptsStream(contract.DefaultTopology)); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	writers := 32
	if v, _ := strconv.Atoi(os.Getenv("BENCH_WRITERS")); v > 0 {
		writers = v
	}
	var next atomic.Int64
	var pub bus.Publisher = js
	if mode == "batcher" {
		bt := bus.NewBatcher(nc, js, contract.StreamAttempts, 0, nil)
		done := make(chan struct{})
		go func() { defer close(done); _ = bt.Run(ctx) }()
		defer func() { cancel(); <-done }()
		pub = bt
	}
	msg := func(i int64) *nats.Msg {
		m := nats.NewMsg(contract.AttemptSubject("acme", "sub-"+strconv.FormatInt(i%10, 10)))
		m.Header.Set(jetstream.MsgIDHeader, "m-"+strconv.FormatInt(i, 10))
		m.Data = body
		return m
	}
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				switch mode {
				case "async":
					// Each writer keeps a window of 8 in flight.
					futs := []jetstream.PubAckFuture{}
					for k := 0; k < 8 && i <= int64(b.N); k++ {
						f, err := js.PublishMsgAsync(msg(i))
						if err != nil {
							b.Error(err)
							return
						}
						futs = append(futs, f)
						if k < 7 {
							i = next.Add(1)
						}
					}
					for _, f := range futs {
						select {
						case <-f.Ok():
						case err := <-f.Err():
							b.Error(err)
							return
						}
					}
				default:
					if _, err := pub.PublishMsg(ctx, msg(i)); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	st, _ := js.Stream(ctx, contract.StreamAttempts)
	info, _ := st.Info(ctx)
	if info.State.Msgs != uint64(b.N) {
		b.Fatalf("stream holds %d records, want %d", info.State.Msgs, b.N)
	}
}

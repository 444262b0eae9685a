package deploytest

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// BenchmarkPublish measures acknowledged JetStream publishes of 512-byte
// events, one at a time as the collector does, on single.conf with
// sync_interval: always and with the 2-minute default, to price the fsync.
func BenchmarkPublish(b *testing.B) {
	for _, bc := range []struct{ name, sync string }{{"sync_always", "always"}, {"sync_2m_default", "2m"}} {
		b.Run(bc.name, func(b *testing.B) {
			p := startSingle(b, "sync_interval: always", "sync_interval: "+bc.sync)
			c := connect(b, p.url(), "collector")
			ctx := context.Background()
			if _, err := c.js.CreateOrUpdateStream(ctx, contract.EventsStream(contract.DefaultTopology)); err != nil {
				b.Fatal(err)
			}
			data := []byte(strings.Repeat("x", 512))
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.js.Publish(ctx, contract.EventSubject("acme", "bench"), data, jetstream.WithMsgID("b-"+strconv.Itoa(i))); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkDurableWriteDeployed prices the group commit on the deployed
// topologies, real nats-server processes from this directory's configs:
// one node with sync_interval: always, and three nodes with every stream
// R3 (where nats-server relaxes SyncAlways to a sync when the Raft log is
// flushed). 32 writers store 1 KiB attempt records, each waiting for its
// ack, either one publish each or through a bus.Batcher (atomic batches of
// 16 or more, the default, or of 2 or more). ns/op is per record.
//
//	go test -run '^$' -bench DurableWriteDeployed -benchtime 3000x ./services/deploytest
func BenchmarkDurableWriteDeployed(b *testing.B) {
	for _, topo := range []string{"single", "r3"} {
		for _, mode := range []string{"publish-and-wait", "batcher", "batcher-min2"} {
			b.Run(topo+"/"+mode, func(b *testing.B) {
				var url string
				replicas := 1
				if topo == "single" {
					url = startSingle(b).url()
				} else {
					nodes := startCluster(b)
					url, replicas = nodes[0].url(), 3
				}
				c := connect(b, url, "dispatcher")
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				cfg := contract.AttemptsStream(contract.Topology{Replicas: replicas, Storage: jetstream.FileStorage})
				for {
					_, err := c.js.CreateOrUpdateStream(ctx, cfg)
					if err == nil {
						break
					}
					if ctx.Err() != nil {
						b.Fatal(err)
					}
					time.Sleep(200 * time.Millisecond) // the cluster is electing its meta leader
				}
				var pub bus.Publisher = c.js
				if mode != "publish-and-wait" {
					bt := bus.NewBatcher(c.nc, c.js, contract.StreamAttempts, 0, nil)
					if mode == "batcher-min2" {
						bt.WithMinAtomic(2)
					}
					done := make(chan struct{})
					go func() { defer close(done); _ = bt.Run(ctx) }()
					defer func() { cancel(); <-done }()
					pub = bt
				}
				body := make([]byte, 1024)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.SetBytes(int64(len(body)))
				b.ResetTimer()
				for w := 0; w < 32; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
							m := nats.NewMsg(contract.AttemptSubject("acme", "sub-1"))
							m.Header.Set(jetstream.MsgIDHeader, "m-"+strconv.FormatInt(i, 10))
							m.Data = body
							if _, err := pub.PublishMsg(ctx, m); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

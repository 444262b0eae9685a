package natsconf

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/contract"
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

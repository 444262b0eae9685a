package collector

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// Events per second through HTTP into a real embedded JetStream (file
// storage), answered after the acks. allocs/op counts the whole process:
// HTTP client, collector and nats-server.
func benchmarkHTTP(b *testing.B, perRequest int, parallel bool) {
	cfg := testConfig()
	cfg.RateLimit = 1e9
	h := start(b, natstest.Run(b), cfg)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	ct := mediaStructured
	if perRequest > 1 {
		ct = mediaBatch
	}
	body := func(n int) string {
		ev := func(i int) string {
			return fmt.Sprintf(`{"specversion":"1.0","id":"b-%d","source":"urn:bench","type":"bench.event","data":{"n":%d}}`, i, i)
		}
		if perRequest == 1 {
			return ev(n)
		}
		var sb strings.Builder
		sb.WriteByte('[')
		for i := range perRequest {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(ev(n*perRequest + i))
		}
		sb.WriteByte(']')
		return sb.String()
	}
	var seq atomicCounter
	post := func() {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/tenants/acme/events", strings.NewReader(body(seq.next())))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				post()
			}
		})
	} else {
		for b.Loop() {
			post()
		}
	}
	b.ReportMetric(float64(b.N*perRequest)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkHTTPSingle(b *testing.B)         { benchmarkHTTP(b, 1, false) }
func BenchmarkHTTPSingleParallel(b *testing.B) { benchmarkHTTP(b, 1, true) }
func BenchmarkHTTPBatch100(b *testing.B)       { benchmarkHTTP(b, 100, false) }

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) next() int { return int(c.n.Add(1)) }

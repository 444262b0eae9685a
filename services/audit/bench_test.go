package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/auditchain"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// benchRecords is how many records the NATS-backed benchmarks write
// (HERALD_AUDIT_BENCH_RECORDS, default 20000); the index benchmark always
// builds 1M.
func benchRecords() int {
	if n, err := strconv.Atoi(os.Getenv("HERALD_AUDIT_BENCH_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 20000
}

func benchRecord(i int) auditchain.Record {
	return auditchain.Record{Tenant: "acme", Kind: auditchain.KindAttempt, SourceStream: contract.StreamAttempts,
		SourceSeq: uint64(i + 1), At: time.Now().UTC(), ID: fmt.Sprintf("att-%d", i), Type: "herald.attempt",
		NotificationID: fmt.Sprintf("ntf-%d", i/10), SubscriptionID: fmt.Sprintf("sub-%d", i%10), EventIDs: []string{fmt.Sprintf("evt-%d", i/10)},
		Subject: fmt.Sprintf("alert-%d", i/100), URL: "https://hooks.example/in", Attempt: 1, Outcome: "delivered", StatusCode: 200, LatencyMs: 12.5}
}

// BenchmarkAppend measures one chained append (cached head, publish with
// expected last subject sequence, CAS of the head) on the embedded server.
func BenchmarkAppend(b *testing.B) {
	h := newHarness(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := benchRecord(i)
		if err := h.svc.append(ctx, &r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkQuery fills the trail with benchRecords() attempts (10 per
// notification) and measures a by-notification query served by the index.
// BenchmarkScan measures the alternative: a subject-filtered scan of the
// tenant's records. Both report the per-query cost at the filled size.
func BenchmarkQuery(b *testing.B) {
	h, n := filled(b)
	ctx := context.Background()
	const perOp = 200 // queries per op, so that one fill yields many samples
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < perOp; j++ {
			p, err := h.svc.Query(ctx, "acme", query{Notification: fmt.Sprintf("ntf-%d", (i*perOp+j*7919)%(n/10)), Limit: 50})
			if err != nil || len(p.Items) != 10 {
				b.Fatalf("query: %d records, %v", len(p.Items), err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perOp), "ns/query")
}

func BenchmarkScan(b *testing.B) {
	h, n := filled(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		want := fmt.Sprintf("ntf-%d", i%(n/10))
		c, err := h.svc.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"audit.acme"}})
		if err != nil {
			b.Fatal(err)
		}
		it, err := c.Messages(jetstream.PullMaxMessages(1000))
		if err != nil {
			b.Fatal(err)
		}
		found := 0
		for seen := 0; seen < n; seen++ {
			m, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			var r auditchain.Record
			_ = json.Unmarshal(m.Data(), &r)
			if r.NotificationID == want {
				found++
			}
		}
		it.Stop()
		if found != 10 {
			b.Fatalf("scan found %d", found)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/record-scanned")
}

func filled(b *testing.B) (*harness, int) {
	b.Helper()
	n := benchRecords()
	h := newHarness(b)
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < n; i++ {
		r := benchRecord(i)
		if err := h.svc.append(ctx, &r); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("filled %d records in %s (%.0f appends/s)", n, time.Since(start), float64(n)/time.Since(start).Seconds())
	natstest.Eventually(b, 60*time.Second, func() error {
		if c := len(h.svc.idx.candidates("acme", query{})); c != n {
			return fmt.Errorf("indexed %d of %d", c, n)
		}
		return nil
	})
	return h, n
}

// BenchmarkIndex1M builds the index from 1M stored record encodings, as a
// restart does, and reports its memory per record.
func BenchmarkIndex1M(b *testing.B) {
	const n = 1_000_000
	raws := make([][]byte, n)
	for i := range raws {
		r := benchRecord(i)
		r.Seq, r.PrevHash = uint64(i+1), "9f2c1d8e6b0a4f3e2d1c0b9a8f7e6d5c4b3a29180f1e2d3c4b5a69788796a5b4"
		raws[i], _ = auditchain.Seal(&r)
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		x := newIndex()
		for i, raw := range raws {
			if err := x.add(uint64(i+1), raw); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "index-bytes/record")
		start := time.Now()
		for q := 0; q < 1000; q++ {
			_ = x.candidates("acme", query{Event: fmt.Sprintf("evt-%d", q*97)})
		}
		b.ReportMetric(float64(time.Since(start).Nanoseconds())/1000, "ns/lookup")
		runtime.KeepAlive(x)
	}
}

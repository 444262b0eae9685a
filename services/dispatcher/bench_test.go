package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// BenchmarkIsolation measures the nine healthy endpoints of ten while the
// tenth answers normally (none-hangs) or never answers (one-hangs). Each
// iteration is one notification fanned out to all ten; the metrics are
// the healthy endpoints' deliveries per second and the publish-to-receipt
// latency percentiles.
//
//	go test -run '^$' -bench Isolation -benchtime 300x ./services/dispatcher/
func BenchmarkIsolation(b *testing.B) {
	for _, hang := range []bool{false, true} {
		name := "none-hangs"
		if hang {
			name = "one-hangs"
		}
		b.Run(name, func(b *testing.B) { benchIsolation(b, hang) })
	}
}

var benchWait = 90 * time.Second

func benchIsolation(b *testing.B, hang bool) {
	h := newHarness(b)
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	received := 0
	done := make(chan struct{})
	want := 9 * b.N
	healthy := func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var n struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &n)
		now := time.Now()
		mu.Lock()
		lat = append(lat, now.Sub(sent[n.ID]))
		received++
		if received == want {
			close(done)
		}
		mu.Unlock()
		w.WriteHeader(204)
	}
	for i := range 10 {
		handler := http.HandlerFunc(healthy)
		if i == 9 && hang {
			handler = func(w http.ResponseWriter, r *http.Request) {
				// Reading the body lets the server notice the client leaving.
				_, _ = io.Copy(io.Discard, r.Body)
				<-r.Context().Done()
			}
		} else if i == 9 {
			handler = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }
		}
		srv := httptest.NewServer(handler)
		b.Cleanup(srv.Close)
		h.putSub(subscription.Subscription{ID: fmt.Sprintf("ep-%d", i), URL: srv.URL})
	}
	cfg := DefaultConfig()
	cfg.ShutdownGrace = 0
	cfg.AllowCIDRs = testConfig().AllowCIDRs
	h.start(cfg)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		id := fmt.Sprintf("n-%d", i)
		e := notification("acme", "alert.opened", id)
		mu.Lock()
		sent[id] = time.Now()
		mu.Unlock()
		if _, err := bus.PublishEvent(ctx, h.srv.JS, contract.NotificationSubject("acme", "alert.opened"), id, e); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(benchWait):
		mu.Lock()
		got := received
		mu.Unlock()
		info, _ := h.srv.JS.Consumer(ctx, contract.StreamDeliveries, contract.ConsumerDeliverer)
		ci, _ := info.Info(ctx)
		b.Fatalf("healthy endpoints got %d of %d; deliverer %+v", got, want, ci)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

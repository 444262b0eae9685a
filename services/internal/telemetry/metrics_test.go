package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// /metrics serves every instrument, including the consumer lag read from a
// real server.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	p, err := New(context.Background(), "metrics-test", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	m, err := NewMetrics(p.Meter())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.Ingested(ctx, "vmanage.alarm", "accepted")
	m.Notified(ctx, "alert.opened")
	m.Delivered(ctx, "delivered")
	m.DeliveredAfter(ctx, 1500*time.Millisecond)
	stopBreakers, err := m.ObserveBreakersOpen(func() int64 { return 2 })
	if err != nil {
		t.Fatal(err)
	}
	defer stopBreakers()
	m.DeadLetters.Add(ctx, 1)

	s := natstest.Run(t)
	if _, err := s.JS.CreateStream(ctx, contract.EventsStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.JS.CreateOrUpdateConsumer(ctx, contract.StreamEvents, contract.EngineConsumer()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.JS.Publish(ctx, contract.EventSubject("acme", "x"), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := RegisterConsumerLag(p.Meter(), s.JS, contract.StreamEvents, contract.ConsumerEngine)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	// A durable that does not exist yet must not break the scrape.
	if _, err := RegisterConsumerLag(p.Meter(), s.JS, contract.StreamEvents, "missing"); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	body := scrape(t, srv.URL)
	for _, want := range []string{
		`herald_ingest_events_total{`, `result="accepted"`, `type="vmanage.alarm"`,
		`herald_notifications_total{`, `type="alert.opened"`,
		`herald_deliveries_total{`, `outcome="delivered"`,
		`herald_delivery_latency_seconds_bucket{`, `le="2.5"`,
		`herald_breakers_open`, `herald_deadletters_total`,
		`herald_consumer_lag{consumer="engine"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `consumer="missing"`) {
		t.Error("/metrics reports lag for a missing consumer")
	}
	if !strings.Contains(grep(body, "herald_breakers_open"), "} 2") {
		t.Errorf("open breakers is not the observed 2:\n%s", grep(body, "herald_breakers_open"))
	}
	if !strings.Contains(body, `stream="EVENTS"} 3`) {
		t.Errorf("consumer lag is not 3 pending:\n%s", grep(body, "herald_consumer_lag"))
	}
}

// Before Setup, MetricsHandler answers 503 rather than an empty page.
func TestMetricsHandlerBeforeSetup(t *testing.T) {
	prev := current.Swap(nil)
	defer current.Store(prev)
	rr := httptest.NewRecorder()
	MetricsHandler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	if rr.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", rr.Code)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func grep(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

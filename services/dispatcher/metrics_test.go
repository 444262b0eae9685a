package dispatcher

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/telemetry"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// The dispatcher feeds the delivery-latency histogram from the
// notification's publication, and the open-breakers gauge from its
// breakers: one healthy endpoint, one failing until its breaker opens.
func TestMetricsLatencyAndOpenBreakers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := telemetry.New(ctx, "dispatcher-test", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	m, err := telemetry.NewMetrics(p.Meter())
	if err != nil {
		t.Fatal(err)
	}
	metricsSrv := httptest.NewServer(p.Handler())
	t.Cleanup(metricsSrv.Close)
	scrape := func() string {
		resp, err := http.Get(metricsSrv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	line := func(body, prefix string) string {
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		return ""
	}

	h := newHarness(t)
	good := newReceiver(t, func(int, *http.Request) int { return 204 })
	bad := newReceiver(t, func(int, *http.Request) int { return 503 })
	h.putSub(subscription.Subscription{ID: "sub-good", URL: good.URL})
	h.putSub(subscription.Subscription{ID: "sub-bad", URL: bad.URL})
	cfg := testConfig()
	cfg.BreakerFailures, cfg.BreakerCooldown = 2, time.Minute
	cfg.Schedule = []time.Duration{0, time.Second, time.Second, time.Second, time.Second}
	h.startWithMetrics(cfg, m)

	if l := line(scrape(), "herald_breakers_open"); !strings.HasSuffix(l, " 0") {
		t.Fatalf("before any failure: %q, want 0 open", l)
	}
	for i := range 3 {
		h.notify("acme", "alert.opened", fmt.Sprintf("n-%d", i))
	}
	good.waitCount(t, 3)
	natstest.Eventually(t, 30*time.Second, func() error {
		body := scrape()
		if l := line(body, "herald_delivery_latency_seconds_count"); !strings.HasSuffix(l, " 3") {
			return fmt.Errorf("latency histogram: %q, want 3 deliveries", l)
		}
		if l := line(body, "herald_breakers_open"); !strings.HasSuffix(l, " 1") {
			return fmt.Errorf("open breakers: %q, want 1", l)
		}
		return nil
	})
}

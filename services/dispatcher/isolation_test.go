package dispatcher

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
)

func TestBreakerOpensAndCloses(t *testing.T) {
	t.Parallel()
	b := newBreakers(3, time.Minute)
	now := time.Now()
	for range 2 {
		b.record("h", false, now)
	}
	if !b.openUntil("h", now).IsZero() {
		t.Fatal("open after 2 of 3 failures")
	}
	b.record("h", false, now)
	if until := b.openUntil("h", now); !until.Equal(now.Add(time.Minute)) {
		t.Fatalf("openUntil %v", until)
	}
	later := now.Add(2 * time.Minute)
	if !b.openUntil("h", later).IsZero() {
		t.Fatal("still open after the cooldown")
	}
	b.record("h", false, later) // half-open: one failure re-opens
	if b.openUntil("h", later).IsZero() {
		t.Fatal("half-open breaker not re-opened by a failure")
	}
	b.record("h", true, later)
	if !b.openUntil("h", later).IsZero() || b.open(later) != 0 {
		t.Fatal("success did not close the breaker")
	}
	if !b.openUntil("other", now).IsZero() {
		t.Fatal("breakers are not per host")
	}
}

// While an endpoint's breaker is open its pairs wait as scheduled
// messages; none is dropped, and all are delivered once it recovers.
func TestBreakerDefersPairs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n <= 2 {
			return 503
		}
		return 200
	})
	sub, _ := h.putSub(subscription.Subscription{ID: "sub-1", URL: rc.URL})
	cfg := testConfig()
	cfg.Schedule = []time.Duration{0, time.Second, time.Second, time.Second, time.Second}
	cfg.BreakerFailures, cfg.BreakerCooldown = 1, 2*time.Second
	svc, _ := h.start(cfg)
	for i := range 5 {
		h.notify("acme", "alert.opened", fmt.Sprintf("n-%d", i))
	}
	for i := range 5 {
		h.waitState(fmt.Sprintf("n-%d", i), sub.ID, stateDelivered)
	}
	h.settled()
	if n := svc.breaker.open(time.Now().Add(-time.Hour)); n != 0 {
		t.Errorf("%d breakers left open", n)
	}
}

// An endpoint failing for longer than DisableAfter is disabled and its
// tenant gets endpoint.disabled.
func TestEndpointDisabledAfterFailingTooLong(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rc := newReceiver(t, func(int, *http.Request) int { return 503 })
	sub, _ := h.putSub(subscription.Subscription{ID: "sub-1", URL: rc.URL})
	cfg := testConfig()
	cfg.Schedule = []time.Duration{0, time.Second, time.Second, time.Second, time.Second, time.Second}
	cfg.DisableAfter = 1500 * time.Millisecond
	cfg.BreakerFailures = 100
	h.start(cfg)
	h.notify("acme", "alert.opened", "n-1")
	st := h.waitState("n-1", sub.ID, stateDeadLettered)
	if st.Attempts >= len(cfg.Schedule) {
		t.Errorf("dead-lettered after %d attempts: the schedule ran out first", st.Attempts)
	}
	if got := h.getSub("acme", sub.ID); got.Status != subscription.StatusDisabled || got.StatusReason == "" {
		t.Errorf("subscription %s (%s), want disabled", got.Status, got.StatusReason)
	}
	waitNotification(t, h, "acme", "endpoint.disabled")
}

func TestRetryAfterAndSchedule(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if d := parseRetryAfter("120", now); d != 2*time.Minute {
		t.Errorf("seconds: %s", d)
	}
	if d := parseRetryAfter(now.Add(time.Hour).Format(http.TimeFormat), now); d != time.Hour {
		t.Errorf("date: %s", d)
	}
	if d := parseRetryAfter("999999999", now); d != maxRetryAfter {
		t.Errorf("cap: %s", d)
	}
	if d, ok := nextDelay(DefaultSchedule, 1, 0, time.Hour); !ok || d != time.Hour {
		t.Errorf("Retry-After beyond the step: %s %v", d, ok)
	}
	for range 100 {
		d, ok := nextDelay(DefaultSchedule, 2, 0.2, 0)
		if !ok || d < 4*time.Minute || d > 6*time.Minute {
			t.Fatalf("jittered 5m step: %s", d)
		}
	}
	if _, ok := nextDelay(DefaultSchedule, len(DefaultSchedule), 0.2, 0); ok {
		t.Error("schedule not exhausted after its last step")
	}
	if at := scheduleTime(now.Add(300*time.Millisecond), 0); !at.Equal(now.Add(2 * time.Second)) {
		t.Errorf("scheduleTime rounds to %v", at)
	}
}

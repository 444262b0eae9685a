package dispatcher

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

func call(t *testing.T, mux *http.ServeMux, method, path, token, body string) (*httptest.ResponseRecorder, replayAnswer) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	var a replayAnswer
	_ = json.Unmarshal(rec.Body.Bytes(), &a)
	return rec, a
}

// A dead-lettered pair is retried on request, and a subscription's failed
// pairs over a range are replayed; delivered pairs are left alone unless
// the whole range is asked for. Every request shows in ATTEMPTS.
func TestRetryAndReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var healthy atomic.Bool
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		if healthy.Load() || strings.HasSuffix(r.Header.Get("ce-id"), "ok") {
			return 200
		}
		return 400
	})
	sub, _ := h.putSub(subscription.Subscription{ID: "sub-1", URL: rc.URL, PayloadMode: subscription.PayloadBinary})
	svc, _ := h.start(testConfig())
	mux := http.NewServeMux()
	svc.Routes(mux)
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)

	h.notify("acme", "alert.opened", "n-ok")
	h.notify("acme", "alert.opened", "n-bad1")
	h.notify("acme", "alert.opened", "n-bad2")
	h.waitState("n-ok", sub.ID, stateDelivered)
	h.waitState("n-bad1", sub.ID, stateDeadLettered)
	h.waitState("n-bad2", sub.ID, stateDeadLettered)
	healthy.Store(true)

	if rec, _ := call(t, mux, "POST", "/v1/tenants/acme/deliveries/x/retry", "", ""); rec.Code != 401 {
		t.Errorf("no token: %d", rec.Code)
	}
	okID := webhookID(pairKey("n-ok", sub.ID))
	if rec, _ := call(t, mux, "POST", "/v1/tenants/acme/deliveries/"+okID+"/retry", testAdminToken, ""); rec.Code != 409 {
		t.Errorf("retry of a delivered pair: %d %s", rec.Code, rec.Body)
	}
	bad1 := webhookID(pairKey("n-bad1", sub.ID))
	rec, ans := call(t, mux, "POST", "/v1/tenants/acme/deliveries/"+bad1+"/retry", testAdminToken, "")
	if rec.Code != 202 || ans.Pairs != 1 {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body)
	}
	h.waitState("n-bad1", sub.ID, stateDelivered)
	// The resend has a webhook-id of its own, so a receiver that drops ids
	// it has seen takes it, and names the pair it replays.
	if len(ans.IDs) != 1 || ans.IDs[0] == bad1 || !strings.HasPrefix(ans.IDs[0], bad1+"_r") {
		t.Errorf("retry answered webhook-ids %v, want a new one derived from %s", ans.IDs, bad1)
	}
	var resent *request
	for _, r := range rc.requests() {
		if r.ID == ans.IDs[0] {
			resent = &r
		}
	}
	if resent == nil || resent.Header.Get(HeaderReplayOf) != bad1 {
		t.Errorf("the resend was not posted under %s with %s: %s", ans.IDs[0], HeaderReplayOf, bad1)
	}
	for _, a := range h.attempts() {
		if a.Replay && a.Outcome == payload.OutcomeDelivered && a.NotificationID == "n-bad1" && (a.WebhookID != ans.IDs[0] || a.ReplayOf != bad1) {
			t.Errorf("replayed attempt recorded as %s (replay of %q)", a.WebhookID, a.ReplayOf)
		}
	}

	rec, ans = call(t, mux, "POST", "/v1/tenants/acme/subscriptions/sub-1/replay", testAdminToken,
		`{"since":"`+since+`","only_failed":true}`)
	if rec.Code != 202 || ans.Pairs != 1 {
		t.Fatalf("replay only failed: %d %s", rec.Code, rec.Body)
	}
	h.waitState("n-bad2", sub.ID, stateDelivered)
	h.settled()
	before := len(rc.requests())

	rec, ans = call(t, mux, "POST", "/v1/tenants/acme/subscriptions/sub-1/replay", testAdminToken, `{"since":"`+since+`"}`)
	if rec.Code != 202 || ans.Pairs != 3 {
		t.Fatalf("replay all: %d %s", rec.Code, rec.Body)
	}
	rc.waitCount(t, before+3)
	h.settled()
	if rec, _ := call(t, mux, "POST", "/v1/tenants/acme/subscriptions/sub-1/replay", testAdminToken, `{"until":"2020-01-01T00:00:00Z"}`); rec.Code != 400 {
		t.Errorf("replay without since: %d", rec.Code)
	}

	var requested, replayed int
	for _, a := range h.attempts() {
		switch {
		case a.Outcome == payload.OutcomeReplayRequested:
			requested++
			if !a.Replay || !strings.Contains(a.Error, "admin") {
				t.Errorf("replay record %+v", a)
			}
		case a.Replay && a.Outcome == payload.OutcomeDelivered:
			replayed++
		}
	}
	if requested != 5 || replayed != 5 {
		t.Errorf("replay records %d, replayed deliveries %d; want 5 and 5", requested, replayed)
	}
}

// Replay resends what was meant for the subscription: not a notification
// from before it existed, and the retrying pairs too. only_failed needs no
// since and finds retrying pairs; a retrying pair can be retried.
func TestReplayRetryingPairs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var healthy atomic.Bool
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		if healthy.Load() {
			return 200
		}
		return 503
	})
	other := newReceiver(t, nil)
	subA, _ := h.putSub(subscription.Subscription{ID: "sub-a", URL: other.URL, CreatedAt: time.Now().Add(-time.Hour)})
	cfg := testConfig()
	cfg.Schedule = []time.Duration{0, time.Hour} // a failing pair stays retrying
	svc, _ := h.start(cfg)
	mux := http.NewServeMux()
	svc.Routes(mux)

	// n-old is planned (for sub-a) before sub-1 exists.
	h.notify("acme", "alert.opened", "n-old")
	h.waitState("n-old", subA.ID, stateDelivered)
	sub, _ := h.putSub(subscription.Subscription{ID: "sub-1", URL: rc.URL, PayloadMode: subscription.PayloadBinary, CreatedAt: time.Now()})
	natstest.Eventually(t, 10*time.Second, func() error {
		if _, ok := svc.index.get("acme", sub.ID); !ok {
			return errNotYet
		}
		return nil
	})
	h.notify("acme", "alert.opened", "n-1")
	h.notify("acme", "alert.opened", "n-2")
	h.waitState("n-1", sub.ID, stateRetryScheduled)
	h.waitState("n-2", sub.ID, stateRetryScheduled)
	if stateRetryScheduled != payload.OutcomeRetrying {
		t.Errorf("the pair state %q is not named as the attempt outcome %q", stateRetryScheduled, payload.OutcomeRetrying)
	}
	healthy.Store(true)

	rec, ans := call(t, mux, "POST", "/v1/tenants/acme/deliveries/"+webhookID(pairKey("n-1", sub.ID))+"/retry", testAdminToken, "")
	if rec.Code != 202 || ans.Pairs != 1 {
		t.Fatalf("retry of a retrying pair: %d %s", rec.Code, rec.Body)
	}
	h.waitState("n-1", sub.ID, stateDelivered)

	rec, ans = call(t, mux, "POST", "/v1/tenants/acme/subscriptions/sub-1/replay", testAdminToken, `{"only_failed":true}`)
	if rec.Code != 202 || ans.Pairs != 1 {
		t.Fatalf("replay only failed without since: %d %s", rec.Code, rec.Body)
	}
	h.waitState("n-2", sub.ID, stateDelivered)

	before := len(rc.requests())
	since := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	rec, ans = call(t, mux, "POST", "/v1/tenants/acme/subscriptions/sub-1/replay", testAdminToken, `{"since":"`+since+`"}`)
	if rec.Code != 202 || ans.Pairs != 2 {
		t.Fatalf("replay since before the subscription: %d %s (want n-1 and n-2, not n-old)", rec.Code, rec.Body)
	}
	for _, r := range rc.waitCount(t, before+2)[before:] {
		if id := r.Header.Get("ce-id"); id == "n-old" {
			t.Errorf("replay sent %s, from before the subscription existed", id)
		}
	}
	if st := h.state("n-old", sub.ID); st != nil {
		t.Errorf("n-old has a pair for sub-1: %+v", st)
	}
	if rec, _ := call(t, mux, "POST", "/v1/tenants/acme/subscriptions/sub-1/replay", testAdminToken, `{"since":"x"}`); rec.Code != 400 {
		t.Errorf("bad since: %d", rec.Code)
	}
}

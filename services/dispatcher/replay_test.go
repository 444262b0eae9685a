package dispatcher

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/payload"
	"github.com/heraldhq/herald/pkg/subscription"
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

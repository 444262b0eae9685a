package audit

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/payload"
)

// TestNotificationFate: GET .../notifications/{id} lists every subscription
// the notification was attempted for, with each pair's state and attempts.
func TestNotificationFate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.story("acme") // ntf-1: sub-1 503 then 200, sub-2 204; ntf-2 without attempts
	base := payload.Attempt{Tenant: "acme", NotificationID: "ntf-1", NotificationType: "alert.opened", Subject: "alert-7",
		URL: "https://hooks.example/dead", StartedAt: time.Now().UTC()}
	dead, replay, other := base, base, base
	dead.AttemptID, dead.SubscriptionID, dead.WebhookID, dead.Attempt, dead.Outcome, dead.StatusCode =
		"att-4", "sub-3", "msg_ntf1_sub3", 8, payload.OutcomeDeadLettered, 500
	replay.AttemptID, replay.SubscriptionID, replay.Outcome, replay.Replay = "att-5", "sub-3", payload.OutcomeReplayRequested, true
	other.AttemptID, other.SubscriptionID, other.NotificationID, other.Outcome = "att-6", "sub-9", "ntf-other", payload.OutcomeDelivered
	for _, a := range []payload.Attempt{dead, replay, other} {
		h.attempt(a)
	}
	h.waitRecords("acme", 10)

	var fate NotificationFate
	if code := h.get("/v1/tenants/acme/notifications/ntf-1", adminToken, &fate); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if fate.Notification == nil || fate.Notification.ID != "ntf-1" || fate.Notification.Type != "alert.opened" {
		t.Errorf("notification record %+v", fate.Notification)
	}
	type want struct {
		sub, state string
		attempts   int
		last       int
		replay     bool
		outcomes   string
	}
	wants := []want{
		{"sub-1", payload.OutcomeDelivered, 2, 200, false, "retrying delivered"},
		{"sub-2", payload.OutcomeDelivered, 1, 204, false, "delivered"},
		{"sub-3", payload.OutcomeDeadLettered, 1, 500, true, "dead_lettered replay_requested"},
	}
	if len(fate.Subscriptions) != len(wants) {
		t.Fatalf("subscriptions %+v, want sub-1, sub-2, sub-3", fate.Subscriptions)
	}
	for i, w := range wants {
		p := fate.Subscriptions[i]
		var outcomes []string
		for _, a := range p.History {
			outcomes = append(outcomes, a.Outcome)
		}
		if p.SubscriptionID != w.sub || p.State != w.state || p.Attempts != w.attempts || p.LastStatusCode != w.last ||
			p.ReplayRequested != w.replay || strings.Join(outcomes, " ") != w.outcomes || p.LastAttemptAt.IsZero() {
			t.Errorf("pair %d = %+v, want %+v", i, p, w)
		}
	}
	if p := fate.Subscriptions[2]; p.WebhookID != "msg_ntf1_sub3" || p.URL != "https://hooks.example/dead" {
		t.Errorf("sub-3 webhook id %q url %q", p.WebhookID, p.URL)
	}
	if h := fate.Subscriptions[0].History; h[0].ErrorClass != payload.ErrClassHTTPStatus || h[0].ResponseSnippet != "busy" || h[1].Seq <= h[0].Seq {
		t.Errorf("sub-1 history %+v", h)
	}

	// A notification nobody was attempted for yet.
	fate = NotificationFate{}
	if code := h.get("/v1/tenants/acme/notifications/ntf-2", adminToken, &fate); code != http.StatusOK || fate.Notification == nil || len(fate.Subscriptions) != 0 {
		t.Errorf("ntf-2: %d %+v", code, fate)
	}

	req, _ := http.NewRequest(http.MethodGet, h.url+"/v1/tenants/acme/notifications/ntf-nope", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p struct{ Detail string }
	_ = json.Unmarshal(raw, &p)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" ||
		!strings.Contains(p.Detail, `holds no notification "ntf-nope"`) {
		t.Errorf("unknown notification: %d %s", resp.StatusCode, raw)
	}
	if code := h.get("/v1/tenants/acme/notifications/ntf-1", "beta-key", nil); code != http.StatusForbidden {
		t.Errorf("another tenant's key: %d", code)
	}
	if code := h.get("/v1/tenants/acme/notifications/ntf-1", "", nil); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d", code)
	}
}

package dispatcher

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// A notification reaches its subscriber once, signed, with the structured
// CloudEvent as body; a redelivered pair and a re-planned notification do
// not cause a second POST.
func TestDeliveredOnceWithValidSignature(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rc := newReceiver(t, nil)
	sub, secret := h.putSub(subscription.Subscription{ID: "sub-1", URL: rc.URL + "/hook"})
	h.start(testConfig())

	n := h.notify("acme", "alert.opened", "n-1")
	got := rc.waitCount(t, 1)
	verify(t, secret, got[0])
	if want := webhookID(pairKey("n-1", sub.ID)); got[0].ID != want {
		t.Errorf("webhook-id %q, want %q", got[0].ID, want)
	}
	if ct := got[0].Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cloudevents+json") {
		t.Errorf("content type %q", ct)
	}
	var body event.Event
	if err := json.Unmarshal(got[0].Body, &body); err != nil {
		t.Fatalf("body is not a CloudEvent: %v", err)
	}
	if body.ID() != n.ID() || body.Type() != n.Type() || !strings.Contains(string(body.Data()), "Disk fülle") {
		t.Errorf("body %s is not the notification", got[0].Body)
	}
	st := h.waitState("n-1", sub.ID, stateDelivered)
	if st.Attempts != 1 {
		t.Errorf("attempts %d, want 1", st.Attempts)
	}

	// The same pair again under another message id (a redelivery), and
	// the same notification re-planned under another stream message.
	raw, _ := json.Marshal(n)
	d := payload.Delivery{Tenant: "acme", SubscriptionID: sub.ID, NotificationTenant: "acme", NotificationID: "n-1",
		NotificationType: n.Type(), Notification: raw, Attempt: 1}
	e, _ := deliveryEvent(d, "again")
	if _, err := bus.PublishEvent(context.Background(), h.srv.JS, contract.DeliverySubject("acme", sub.ID), "again", e); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.PublishEvent(context.Background(), h.srv.JS, contract.NotificationSubject("acme", n.Type()), "n-1-again", n); err != nil {
		t.Fatal(err)
	}
	h.settled()
	if got := rc.requests(); len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	var delivered int
	for _, a := range h.attempts() {
		if a.Outcome == payload.OutcomeDelivered {
			delivered++
			if a.StatusCode != 204 || a.WebhookID != got[0].ID || a.URL != rc.URL+"/hook" {
				t.Errorf("attempt %+v", a)
			}
		}
	}
	if delivered != 1 {
		t.Errorf("%d delivered attempts, want 1", delivered)
	}
}

// 500 then 200: retried through a scheduled message and delivered; both
// attempts carry the same webhook-id and are recorded.
func TestRetriedThenDelivered(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n == 1 {
			return 500
		}
		return 200
	})
	sub, secret := h.putSub(subscription.Subscription{ID: "sub-1", URL: rc.URL})
	h.start(testConfig())
	h.notify("acme", "alert.opened", "n-1")
	st := h.waitState("n-1", sub.ID, stateDelivered)
	if st.Attempts != 2 {
		t.Errorf("attempts %d, want 2", st.Attempts)
	}
	got := rc.requests()
	if len(got) != 2 || got[0].ID != got[1].ID {
		t.Fatalf("requests %d, ids differ or wrong count", len(got))
	}
	verify(t, secret, got[1])
	h.settled() // the schedule message is gone too
	var outcomes []string
	for _, a := range h.attempts() {
		outcomes = append(outcomes, a.Outcome)
		if a.Outcome == payload.OutcomeRetrying && (a.NextAttemptAt == nil || a.StatusCode != 500 || a.ErrorClass != payload.ErrClassHTTPStatus) {
			t.Errorf("retrying attempt %+v", a)
		}
	}
	if strings.Join(outcomes, ",") != "retrying,delivered" {
		t.Errorf("outcomes %v", outcomes)
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		code      int
		policy    string
		posts     int
		outcome   string
		errClass  string
		finalSubs string
	}{
		{"400 fails at once", 400, subscription.RetryDefault, 1, payload.OutcomeFailed, payload.ErrClassHTTPStatus, subscription.StatusEnabled},
		{"302 is not followed", 302, subscription.RetryDefault, 1, payload.OutcomeFailed, payload.ErrClassRedirect, subscription.StatusEnabled},
		{"410 disables", 410, subscription.RetryDefault, 1, payload.OutcomeFailed, payload.ErrClassHTTPStatus, subscription.StatusDisabled},
		{"single attempt", 503, subscription.RetrySingle, 1, payload.OutcomeDeadLettered, payload.ErrClassHTTPStatus, subscription.StatusEnabled},
		{"schedule exhausted", 503, subscription.RetryDefault, 3, payload.OutcomeDeadLettered, payload.ErrClassHTTPStatus, subscription.StatusEnabled},
		{"429 retried", 429, subscription.RetryDefault, 3, payload.OutcomeDeadLettered, payload.ErrClassHTTPStatus, subscription.StatusEnabled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			rc := newReceiver(t, func(int, *http.Request) int { return c.code })
			if c.code == 302 {
				rc.Config.Handler = http.RedirectHandler("http://169.254.169.254/latest/meta-data/", 302)
			}
			sub, _ := h.putSub(subscription.Subscription{ID: "sub-1", URL: rc.URL + "/x?token=secret", RetryPolicy: c.policy})
			h.start(testConfig())
			h.notify("acme", "alert.opened", "n-1")
			st := h.waitState("n-1", sub.ID, stateDeadLettered)
			h.settled()
			if c.code != 302 {
				if got := len(rc.requests()); got != c.posts {
					t.Errorf("%d POSTs, want %d", got, c.posts)
				}
			}
			if st.Attempts != c.posts {
				t.Errorf("recorded attempts %d, want %d", st.Attempts, c.posts)
			}
			as := h.attempts()
			if len(as) != c.posts {
				t.Fatalf("%d attempt records, want %d", len(as), c.posts)
			}
			last := as[len(as)-1]
			if last.Outcome != c.outcome || last.ErrorClass != c.errClass || last.StatusCode != c.code {
				t.Errorf("last attempt %+v", last)
			}
			if strings.Contains(last.URL, "secret") {
				t.Errorf("attempt URL %q keeps the query", last.URL)
			}
			if got := h.getSub("acme", sub.ID).Status; got != c.finalSubs {
				t.Errorf("subscription status %q, want %q", got, c.finalSubs)
			}
			if c.code == 410 {
				waitNotification(t, h, "acme", "subscription.disabled")
			}
		})
	}
}

func waitNotification(t *testing.T, h *harness, tenant, typ string) {
	t.Helper()
	natstest := func() error {
		st, err := h.srv.JS.Stream(context.Background(), contract.StreamNotifications)
		if err != nil {
			return err
		}
		_, err = st.GetLastMsgForSubject(context.Background(), contract.NotificationSubject(tenant, typ))
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for natstest() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("no %s notification for %s", typ, tenant)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A first attempt is claimed with a Create without reading the record;
// when the Create finds one, the record decides as if it had been read
// first: a delivered pair is not posted again (not even rescheduled while
// its subscription is paused), a released pair is claimed and delivered,
// a leased one waits for its lease.
func TestFirstAttemptFindsRecord(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	leasedID := webhookID(pairKey("n-leased", "sub-1"))
	var leasedAt atomic.Int64
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		if r.Header.Get(webhook.HeaderID) == leasedID {
			leasedAt.CompareAndSwap(0, time.Now().UnixNano())
		}
		return 204
	})
	sub, _ := h.putSub(subscription.Subscription{ID: "sub-1", URL: rc.URL + "/hook"})
	paused, _ := h.putSub(subscription.Subscription{ID: "sub-p", URL: rc.URL + "/paused", Status: subscription.StatusPaused})
	h.start(testConfig())
	ctx := context.Background()
	kv, err := h.srv.JS.KeyValue(ctx, contract.BucketDeliveryState)
	if err != nil {
		t.Fatal(err)
	}
	put := func(notif, subID string, st pairState) {
		t.Helper()
		st.Tenant, st.SubscriptionID, st.NotificationID, st.NotificationTenant = "acme", subID, notif, "acme"
		b, _ := json.Marshal(st)
		if _, err := kv.Create(ctx, pairKey(notif, subID), b); err != nil {
			t.Fatal(err)
		}
	}
	send := func(notif, subID string) {
		t.Helper()
		raw, _ := json.Marshal(notification("acme", "alert.opened", notif))
		d := payload.Delivery{Tenant: "acme", SubscriptionID: subID, NotificationTenant: "acme", NotificationID: notif,
			NotificationType: "alert.opened", Notification: raw, Attempt: 1}
		e, _ := deliveryEvent(d, notif+":"+subID)
		if _, err := bus.PublishEvent(ctx, h.srv.JS, contract.DeliverySubject("acme", subID), notif+":"+subID, e); err != nil {
			t.Fatal(err)
		}
	}
	put("n-done", sub.ID, pairState{State: stateDelivered, Attempts: 1})
	put("n-done", paused.ID, pairState{State: stateDelivered, Attempts: 1})
	put("n-released", sub.ID, pairState{State: stateRetryScheduled})
	leaseEnd := time.Now().Add(1500 * time.Millisecond)
	put("n-leased", sub.ID, pairState{State: stateInFlight, Owner: "other", LeaseUntil: leaseEnd})
	send("n-done", sub.ID)
	send("n-done", paused.ID)
	send("n-released", sub.ID)
	send("n-leased", sub.ID)

	if st := h.waitState("n-released", sub.ID, stateDelivered); st.Attempts != 1 {
		t.Errorf("released pair: attempts %d, want 1", st.Attempts)
	}
	if st := h.waitState("n-leased", sub.ID, stateDelivered); st.Attempts != 1 {
		t.Errorf("leased pair: attempts %d, want 1", st.Attempts)
	}
	h.settled()
	if at := time.Unix(0, leasedAt.Load()); at.Before(leaseEnd) {
		t.Errorf("leased pair posted %s before its lease ended", leaseEnd.Sub(at))
	}
	ids := map[string]int{}
	for _, r := range rc.requests() {
		ids[r.ID]++
	}
	releasedID := webhookID(pairKey("n-released", sub.ID))
	if len(ids) != 2 || ids[releasedID] != 1 || ids[leasedID] != 1 {
		t.Errorf("POSTs by webhook-id %v, want one each for the released and the leased pair", ids)
	}
	delivered := map[string]int{}
	for _, a := range h.attempts() {
		if a.Outcome == payload.OutcomeDelivered {
			delivered[a.WebhookID]++
		}
	}
	if len(delivered) != 2 || delivered[releasedID] != 1 || delivered[leasedID] != 1 {
		t.Errorf("delivered attempts by webhook-id %v, want one each for the released and the leased pair", delivered)
	}
}

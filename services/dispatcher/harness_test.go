package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/secretbox"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/domain/tenancy"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/telemetry"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

const testAdminToken = "test-admin-token-123456"

// harness plays the registry (buckets) and the engine (NOTIFICATIONS)
// around real dispatchers on an embedded server.
type harness struct {
	t       testing.TB
	srv     *natstest.Server
	keys    *secretbox.Keyring
	subs    jetstream.KeyValue
	tenants jetstream.KeyValue
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	s := natstest.Run(t)
	keys, err := secretbox.Parse(secretbox.NewKeySpec())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, s.JS, contract.NotificationsStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: s, keys: keys}
	if h.subs, err = bus.EnsureBucket(ctx, s.JS, contract.Bucket(contract.BucketSubscriptions, contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	if h.tenants, err = bus.EnsureBucket(ctx, s.JS, contract.Bucket(contract.BucketTenants, contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	h.putTenant("acme", "")
	return h
}

func testConfig() Config {
	c := DefaultConfig()
	c.Workers = 8
	c.Timeout = 5 * time.Second
	c.Schedule = []time.Duration{0, time.Second, time.Second}
	c.Jitter = 0
	c.ShutdownGrace = 0
	c.AllowCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	return c
}

// start runs a dispatcher on its own connection until the test ends or
// the returned cancel is called; cancel waits for Run to return.
func (h *harness) start(cfg Config) (*Service, func()) {
	h.t.Helper()
	return h.startWithMetrics(cfg, nil)
}

// startWithMetrics is start with the process's instruments.
func (h *harness) startWithMetrics(cfg Config, metrics *telemetry.Metrics) (*Service, func()) {
	h.t.Helper()
	nc, js := natstest.Connect(h.t, h.srv.ClientURL())
	svc, err := New(cfg, service.Deps{NC: nc, JS: js, Logger: slog.New(slog.DiscardHandler), Metrics: metrics,
		Topology: contract.DefaultTopology, Auth: apiauth.NewAdminToken(testAdminToken), Keys: h.keys})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("Run returned %v", err)
				}
			case <-time.After(20 * time.Second):
				h.t.Errorf("Run did not return after cancel")
			}
		})
	}
	h.t.Cleanup(stop)
	natstest.Eventually(h.t, 15*time.Second, svc.Ready)
	return svc, stop
}

func (h *harness) putTenant(id, parent string) {
	h.t.Helper()
	b, _ := json.Marshal(tenancy.Tenant{ID: id, Name: id, Kind: tenancy.KindAccount, Parent: parent})
	if _, err := h.tenants.Put(context.Background(), id, b); err != nil {
		h.t.Fatal(err)
	}
}

// putSub stores a subscription with a fresh HMAC secret and returns it.
// It plays the operator registering it, so loopback receivers are granted
// the allow-list (OperatorAllowed).
func (h *harness) putSub(sub subscription.Subscription) (subscription.Subscription, string) {
	h.t.Helper()
	secret := webhook.NewSecret()
	sub.OperatorAllowed = true
	if sub.Tenant == "" {
		sub.Tenant = "acme"
	}
	if sub.Events == nil {
		sub.Events = []string{"alert.*"}
	}
	if sub.Status == "" {
		sub.Status = subscription.StatusEnabled
	}
	if sub.RetryPolicy == "" {
		sub.RetryPolicy = subscription.RetryDefault
	}
	if sub.PayloadMode == "" {
		sub.PayloadMode = subscription.PayloadStructured
	}
	if sub.Auth.Type == "" {
		sub.Auth.Type = subscription.AuthNone
	}
	sub.Auth.Secrets = append(sub.Auth.Secrets, subscription.Secret{ID: "s1", Sealed: h.keys.Seal(secret), CreatedAt: time.Now()})
	b, _ := json.Marshal(sub)
	if _, err := h.subs.Put(context.Background(), subscription.Key(sub.Tenant, sub.ID), b); err != nil {
		h.t.Fatal(err)
	}
	return sub, secret
}

func (h *harness) getSub(tenant, id string) subscription.Subscription {
	h.t.Helper()
	e, err := h.subs.Get(context.Background(), subscription.Key(tenant, id))
	if err != nil {
		h.t.Fatal(err)
	}
	var s subscription.Subscription
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

func notification(tenant, typ, id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("herald/engine")
	e.SetType(typ)
	e.SetSubject("alert-1")
	e.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	e.SetExtension("tenant", tenant)
	_ = e.SetData(event.ApplicationJSON, map[string]any{"alertId": "alert-1", "title": "Disk fülle"})
	return e
}

func (h *harness) notify(tenant, typ, id string) event.Event {
	h.t.Helper()
	e := notification(tenant, typ, id)
	if _, err := bus.PublishEvent(context.Background(), h.srv.JS, contract.NotificationSubject(tenant, typ), id, e); err != nil {
		h.t.Fatal(err)
	}
	return e
}

func (h *harness) state(notifID, subID string) *pairState {
	h.t.Helper()
	kv, err := h.srv.JS.KeyValue(context.Background(), contract.BucketDeliveryState)
	if err != nil {
		return nil
	}
	e, err := kv.Get(context.Background(), pairKey(notifID, subID))
	if err != nil {
		return nil
	}
	var st pairState
	_ = json.Unmarshal(e.Value(), &st)
	return &st
}

// waitState waits until the pair's record is in state want.
func (h *harness) waitState(notifID, subID, want string) *pairState {
	h.t.Helper()
	var st *pairState
	natstest.Eventually(h.t, 20*time.Second, func() error {
		st = h.state(notifID, subID)
		if st == nil || st.State != want {
			return natstest.Errorf("pair state %+v, want %s", st, want)
		}
		return nil
	})
	return st
}

// attempts reads every ATTEMPTS record stored so far.
func (h *harness) attempts() []payload.Attempt {
	h.t.Helper()
	ctx := context.Background()
	st, err := h.srv.JS.Stream(ctx, contract.StreamAttempts)
	if err != nil {
		return nil
	}
	info, err := st.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []payload.Attempt
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		e, err := cenats.Decode(m.Header, m.Data)
		if err != nil {
			h.t.Fatal(err)
		}
		var a payload.Attempt
		if err := e.DataAs(&a); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// settled waits until DELIVERIES holds nothing: no pending pair, no
// scheduled retry.
func (h *harness) settled() {
	h.t.Helper()
	natstest.Eventually(h.t, 20*time.Second, func() error {
		st, err := h.srv.JS.Stream(context.Background(), contract.StreamDeliveries)
		if err != nil {
			return err
		}
		info, err := st.Info(context.Background())
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			return natstest.Errorf("DELIVERIES holds %d messages", info.State.Msgs)
		}
		return nil
	})
}

// request is one POST seen by a receiver.
type request struct {
	ID, Signature string
	Header        http.Header
	Body          []byte
	Path          string
}

// receiver is an httptest server whose answers come from respond.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []request
	respond func(n int, r *http.Request) int // n counts from 1
}

func newReceiver(t testing.TB, respond func(n int, r *http.Request) int) *receiver {
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, request{ID: r.Header.Get(webhook.HeaderID), Signature: r.Header.Get(webhook.HeaderSignature),
		Header: r.Header.Clone(), Body: body, Path: r.URL.Path})
	n := len(rc.got)
	rc.mu.Unlock()
	code := http.StatusNoContent
	if rc.respond != nil {
		code = rc.respond(n, r)
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, "answer "+http.StatusText(code))
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}

func (rc *receiver) waitCount(t testing.TB, n int) []request {
	t.Helper()
	natstest.Eventually(t, 20*time.Second, func() error {
		if got := len(rc.requests()); got < n {
			return natstest.Errorf("receiver got %d requests, want %d", got, n)
		}
		return nil
	})
	return rc.requests()
}

func verify(t testing.TB, secret string, r request) {
	t.Helper()
	v, err := webhook.NewVerifier([]string{secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(r.Header, r.Body); err != nil {
		t.Errorf("signature of %s: %v", r.ID, err)
	}
}

var errNotYet = errors.New("not yet")

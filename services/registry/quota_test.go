package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// TestQuotaExactUnderConcurrentCreates races 20 creates against a quota of
// 5, on two registry instances sharing the buckets: exactly 5 succeed, the
// other 15 get the quota's 409, and 5 subscriptions (and 5 CHANGES
// records of their creation) remain.
func TestQuotaExactUnderConcurrentCreates(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	second := newHarnessOn(t, h)
	h.tenant("acme", "account", "")
	h.tenant("proj", "project", "acme")

	const racers = 20
	codes := make([]int, racers)
	raws := make([]string, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			target := h
			if i%2 == 1 {
				target = second
			}
			a := target.call(adminToken, "POST", "/v1/tenants/proj/subscriptions", map[string]any{"url": "http://127.0.0.1:9/h", "events": []string{"*"}})
			codes[i], raws[i] = a.status, a.raw
		}()
	}
	close(start)
	wg.Wait()
	created, refused := 0, 0
	for i, c := range codes {
		switch {
		case c == http.StatusCreated:
			created++
		case c == http.StatusConflict && strings.Contains(raws[i], "at most 5 subscriptions"):
			refused++
		default:
			t.Errorf("racer %d: %d %s", i, c, raws[i])
		}
	}
	if created != 5 || refused != 15 {
		t.Errorf("%d created, %d refused; want 5 and 15", created, refused)
	}
	keys, err := h.svc.listKeys(context.Background(), h.svc.subKV(), "proj.*")
	if err != nil || len(keys) != 5 {
		t.Errorf("%d subscriptions stored (%v), want 5", len(keys), err)
	}
	n := 0
	for _, m := range h.changes(context.Background()) {
		if typ, tenant, _ := decodeChange(t, m); typ == "herald.change.subscription.created" && tenant == "proj" {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d subscription.created changes, want 5", n)
	}
	// The tenant record is unchanged by the quota's confirmations.
	a := h.admin("GET", "/v1/tenants/proj", nil, http.StatusOK)
	if a.body["name"] != "PROJ" || a.body["created_at"] != a.body["updated_at"] {
		t.Errorf("tenant after the race: %s", a.raw)
	}
}

// newHarnessOn runs a second registry instance on h's server and keys.
func newHarnessOn(t *testing.T, h *harness) *harness {
	t.Helper()
	svc, err := New(h.svc.cfg, h.deps)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	natstest.Eventually(t, 20*time.Second, svc.Ready)
	return &harness{t: t, ns: h.ns, svc: svc, deps: h.deps, srv: srv, logs: h.logs}
}

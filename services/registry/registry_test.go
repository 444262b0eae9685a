package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/secretbox"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

const adminToken = "test-admin-token-123456"

// syncBuffer collects the service's logs so tests can grep them for secrets.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tenantKeys stands in for the collector's API keys: key -> tenant.
type tenantKeys map[string]string

func (k tenantKeys) Authenticate(r *http.Request) (apiauth.Principal, error) {
	tok, ok := apiauth.BearerToken(r)
	if !ok {
		return apiauth.Principal{}, apiauth.ErrNoCredentials
	}
	t, ok := k[tok]
	if !ok {
		return apiauth.Principal{}, apiauth.ErrNoCredentials
	}
	return apiauth.Principal{Actor: "apikey:" + t + "/k1", Tenant: t}, nil
}

type harness struct {
	t    testing.TB
	ns   *natstest.Server
	svc  *Service
	deps service.Deps
	srv  *httptest.Server
	logs *syncBuffer
}

func devEnv(k string) string {
	return map[string]string{
		"HERALD_REGISTRY_ALLOW_HTTP":  "true",
		"HERALD_REGISTRY_ALLOW_CIDRS": "127.0.0.0/8,::1/128",
	}[k]
}

func newHarness(t testing.TB, mutate func(*Config)) *harness {
	t.Helper()
	ns := natstest.Run(t)
	keys, err := secretbox.Parse(secretbox.NewKeySpec())
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	deps := service.Deps{
		NC: ns.NC, JS: ns.JS, Topology: contract.DefaultTopology, Keys: keys,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Auth:   apiauth.Chain{apiauth.NewAdminToken(adminToken), tenantKeys{"key-acme": "acme", "key-other": "other"}},
	}
	cfg, err := ConfigFromEnv(devEnv)
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	svc, err := New(cfg, deps)
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
	return &harness{t: t, ns: ns, svc: svc, deps: deps, srv: srv, logs: logs}
}

type answer struct {
	status int
	raw    string
	body   map[string]any
	header http.Header
}

func (h *harness) call(token, method, path string, body any) answer {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(raw), header: resp.Header}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// admin calls as the operator and fails the test unless want is answered.
func (h *harness) admin(method, path string, body any, want int) answer {
	h.t.Helper()
	a := h.call(adminToken, method, path, body)
	if a.status != want {
		h.t.Fatalf("%s %s = %d %s, want %d", method, path, a.status, a.raw, want)
	}
	return a
}

func (h *harness) tenant(id, kind, parent string) {
	h.t.Helper()
	h.admin("POST", "/v1/tenants", map[string]any{"id": id, "name": strings.ToUpper(id), "kind": kind, "parent": parent}, http.StatusCreated)
}

// changes returns every CHANGES record so far.
func (h *harness) changes(ctx context.Context) []jetstream.Msg {
	h.t.Helper()
	c, err := h.ns.JS.OrderedConsumer(ctx, contract.StreamChanges, jetstream.OrderedConsumerConfig{})
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := h.ns.JS.Stream(ctx, contract.StreamChanges)
	if err != nil {
		h.t.Fatal(err)
	}
	n := int(info.CachedInfo().State.Msgs)
	var out []jetstream.Msg
	for len(out) < n {
		b, err := c.Fetch(n-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			h.t.Fatal(err)
		}
		got := 0
		for m := range b.Messages() {
			out = append(out, m)
			got++
		}
		if got == 0 {
			break
		}
	}
	return out
}

func decodeChange(t *testing.T, m jetstream.Msg) (string, string, payload.Change) {
	t.Helper()
	e, err := cenats.Decode(m.Headers(), m.Data())
	if err != nil {
		t.Fatal(err)
	}
	var ch payload.Change
	if err := json.Unmarshal(e.Data(), &ch); err != nil {
		t.Fatal(err)
	}
	tenant, _ := e.Extensions()["tenant"].(string)
	return e.Type(), tenant, ch
}

func pointers(a answer) map[string]string {
	out := map[string]string{}
	errs, _ := a.body["errors"].([]any)
	for _, e := range errs {
		m := e.(map[string]any)
		out[m["pointer"].(string)] = m["detail"].(string)
	}
	return out
}

func TestTenantCRUDAndDeleteRule(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	h.tenant("acme-eu", "subaccount", "acme")
	h.tenant("acme-web", "project", "acme-eu")
	h.tenant("beta", "account", "")

	a := h.admin("GET", "/v1/tenants/acme-web", nil, http.StatusOK)
	if a.body["parent"] != "acme-eu" || a.body["kind"] != "project" {
		t.Errorf("get tenant = %s", a.raw)
	}
	h.admin("POST", "/v1/tenants", map[string]any{"id": "acme", "name": "x", "kind": "account"}, http.StatusConflict)

	// Every field error at once.
	a = h.admin("POST", "/v1/tenants", map[string]any{"id": "Bad.Id", "name": "", "kind": "galaxy"}, http.StatusBadRequest)
	if p := pointers(a); len(p) != 3 || p["/id"] == "" || p["/name"] == "" || p["/kind"] == "" {
		t.Errorf("tenant field errors = %v", p)
	}
	a = h.admin("POST", "/v1/tenants", map[string]any{"id": "p2", "name": "P", "kind": "project", "parent": "nobody"}, http.StatusBadRequest)
	if !strings.Contains(pointers(a)["/parent"], "does not exist") {
		t.Errorf("unknown parent: %s", a.raw)
	}
	a = h.admin("POST", "/v1/tenants", map[string]any{"id": "p3", "name": "P", "kind": "subaccount", "parent": "acme-web"}, http.StatusBadRequest)
	if !strings.Contains(pointers(a)["/parent"], "cannot belong") {
		t.Errorf("sub-account under project: %s", a.raw)
	}

	// Cursor pagination visits every tenant once.
	var seen []string
	cursor := ""
	for range 10 {
		a = h.admin("GET", "/v1/tenants?limit=2&cursor="+cursor, nil, http.StatusOK)
		for _, it := range a.body["items"].([]any) {
			seen = append(seen, it.(map[string]any)["id"].(string))
		}
		next, _ := a.body["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if got := strings.Join(seen, ","); got != "acme,acme-eu,acme-web,beta" {
		t.Errorf("paged tenants = %s", got)
	}
	a = h.admin("GET", "/v1/tenants?parent=acme", nil, http.StatusOK)
	if items := a.body["items"].([]any); len(items) != 1 {
		t.Errorf("?parent=acme = %s", a.raw)
	}
	h.admin("GET", "/v1/tenants?limit=0", nil, http.StatusBadRequest)

	// PATCH settings; a source password is sealed, shown only as set.
	a = h.admin("PATCH", "/v1/tenants/acme", map[string]any{"name": "Acme Inc", "settings": map[string]any{
		"subscription_quota": 7, "source_auth": map[string]any{"vmanage": map[string]any{"username": "vm", "password": "vm-pass-s3cret"}},
	}}, http.StatusOK)
	if a.body["name"] != "Acme Inc" || strings.Contains(a.raw, "vm-pass-s3cret") || !strings.Contains(a.raw, `"password_set":true`) {
		t.Errorf("patch tenant = %s", a.raw)
	}
	a = h.admin("PATCH", "/v1/tenants/acme", map[string]any{"kind": "project"}, http.StatusBadRequest)
	if pointers(a)["/kind"] == "" {
		t.Errorf("patch of kind: %s", a.raw)
	}

	// Delete: refused while children exist, cascade removes the subtree.
	h.admin("POST", "/v1/tenants/acme-web/subscriptions", map[string]any{"url": "http://127.0.0.1:9/h", "events": []string{"*"}}, http.StatusCreated)
	a = h.admin("DELETE", "/v1/tenants/acme", nil, http.StatusConflict)
	if !strings.Contains(a.raw, "cascade=true") {
		t.Errorf("delete with children: %s", a.raw)
	}
	h.admin("DELETE", "/v1/tenants/acme-web", nil, http.StatusConflict) // has a subscription
	h.admin("DELETE", "/v1/tenants/acme?cascade=true", nil, http.StatusNoContent)
	for _, id := range []string{"acme", "acme-eu", "acme-web"} {
		h.admin("GET", "/v1/tenants/"+id, nil, http.StatusNotFound)
	}
	h.admin("GET", "/v1/tenants/beta", nil, http.StatusOK)
	if !strings.Contains(h.logs.String(), "tenant created") || strings.Contains(h.logs.String(), "vm-pass-s3cret") {
		t.Errorf("logs: %s", h.logs.String())
	}
	var deleted []string
	for _, m := range h.changes(context.Background()) {
		if typ, tenant, ch := decodeChange(t, m); strings.HasSuffix(typ, ".deleted") {
			deleted = append(deleted, ch.Entity+":"+tenant+"/"+ch.EntityID)
			if ch.Diff["id"].Old == nil || ch.Diff["id"].New != nil {
				t.Errorf("deleted diff = %+v", ch.Diff)
			}
		}
	}
	if got := strings.Join(deleted, " "); !strings.HasPrefix(got, "subscription:acme-web/sub_") || !strings.HasSuffix(got, "tenant:acme-web/acme-web tenant:acme-eu/acme-eu tenant:acme/acme") {
		t.Errorf("cascade changes = %s", got)
	}
	keys, err := h.svc.listKeys(context.Background(), h.svc.subKV(), "")
	if err != nil || len(keys) != 0 {
		t.Errorf("subscriptions after cascade: %v %v", keys, err)
	}
}

func TestAuth401And403(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	h.tenant("other", "account", "")
	if a := h.call("", "GET", "/v1/tenants/acme/subscriptions", nil); a.status != http.StatusUnauthorized {
		t.Errorf("no token = %d", a.status)
	}
	if a := h.call("wrong-token-xxxxxxxx", "GET", "/v1/tenants/acme", nil); a.status != http.StatusUnauthorized {
		t.Errorf("wrong token = %d", a.status)
	}
	if a := h.call("key-other", "GET", "/v1/tenants/acme/subscriptions", nil); a.status != http.StatusForbidden {
		t.Errorf("other tenant's key = %d %s", a.status, a.raw)
	}
	if a := h.call("key-other", "POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"}}); a.status != http.StatusForbidden {
		t.Errorf("other tenant's key create = %d", a.status)
	}
	if a := h.call("key-acme", "POST", "/v1/tenants", map[string]any{"id": "root2", "name": "R", "kind": "account"}); a.status != http.StatusForbidden {
		t.Errorf("tenant key creating a root = %d", a.status)
	}
	if a := h.call("key-acme", "POST", "/v1/tenants", map[string]any{"id": "acme-p", "name": "P", "kind": "project", "parent": "acme"}); a.status != http.StatusCreated {
		t.Errorf("tenant key creating its project = %d %s", a.status, a.raw)
	}
	// Loopback receivers need the operator's grant for a tenant key.
	h.admin("PATCH", "/v1/tenants/acme", map[string]any{"settings": map[string]any{"allow_private_destinations": true}}, http.StatusOK)
	a := h.call("key-acme", "POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"}})
	if a.status != http.StatusCreated {
		t.Fatalf("own key create = %d %s", a.status, a.raw)
	}
	a = h.call("key-acme", "GET", "/v1/tenants", nil)
	if items := a.body["items"].([]any); len(items) != 1 {
		t.Errorf("tenant key sees %d tenants, want only its own", len(items))
	}
	// The actor of the change is the key, not a secret.
	ctx := context.Background()
	var found bool
	for _, m := range h.changes(ctx) {
		if typ, _, ch := decodeChange(t, m); typ == "herald.change.subscription.created" {
			found = ch.Actor == "apikey:acme/k1"
		}
	}
	if !found {
		t.Error("no subscription.created change with the key's actor")
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	h.admin("GET", "/v1/tenants/nobody", nil, http.StatusNotFound)
	h.admin("GET", "/v1/tenants/nobody/subscriptions", nil, http.StatusNotFound)
	h.admin("POST", "/v1/tenants/nobody/subscriptions", map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"}}, http.StatusNotFound)
	for _, p := range []string{"", "/pause", "/resume", "/rotate-secret", "/test", "/public-key"} {
		method := "POST"
		if p == "" || p == "/public-key" {
			method = "GET"
		}
		h.admin(method, "/v1/tenants/acme/subscriptions/sub_nope"+p, nil, http.StatusNotFound)
	}
	h.admin("PATCH", "/v1/tenants/acme/subscriptions/sub_nope", map[string]any{}, http.StatusNotFound)
	h.admin("DELETE", "/v1/tenants/acme/subscriptions/sub_nope", nil, http.StatusNotFound)
}

func TestNotReadyAnswers503(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	keys, _ := secretbox.Parse(secretbox.NewKeySpec())
	svc, err := New(Config{SubscriptionQuota: 5, TestTimeout: time.Second}, service.Deps{JS: ns.JS, Keys: keys, Auth: apiauth.NewAdminToken(adminToken)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes(mux)
	req := httptest.NewRequest("GET", "/v1/tenants", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("before Run: %d %v", rec.Code, rec.Header())
	}
}

func TestConfigFromEnv(t *testing.T) {
	c, err := ConfigFromEnv(func(string) string { return "" })
	if err != nil || c.AllowHTTP || len(c.AllowCIDRs) != 0 || c.SubscriptionQuota != 5 || c.RotationOverlap != 24*time.Hour || c.TestTimeout != 15*time.Second {
		t.Errorf("defaults = %+v, %v", c, err)
	}
	bad := map[string]string{
		"HERALD_REGISTRY_ALLOW_HTTP": "maybe", "HERALD_REGISTRY_ALLOW_CIDRS": "nope",
		"HERALD_REGISTRY_SUBSCRIPTION_QUOTA": "0", "HERALD_REGISTRY_ROTATION_OVERLAP": "1 day",
	}
	_, err = ConfigFromEnv(func(k string) string { return bad[k] })
	for k := range bad {
		if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(k, "HERALD_REGISTRY_")) && !strings.Contains(err.Error(), "quota") {
			t.Errorf("error %v does not name %s", err, k)
		}
	}
}

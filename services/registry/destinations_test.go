package registry

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/domain/urlguard"
)

// On the dev default the operator allows loopback. A tenant key must not
// get that allowance: it would let a tenant point a subscription at the
// NATS port next to Herald and read its banner through the test call.
func TestTenantKeyCannotUseOperatorAllowList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	natsURL, err := url.Parse(h.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	loop := "http://" + natsURL.Host + "/"

	for _, u := range []string{loop, "http://localhost:9/hook", "http://[::1]:9/"} {
		a := h.call("key-acme", "POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": u, "events": []string{"*"}})
		if a.status != http.StatusBadRequest || !strings.Contains(a.raw, `"/url"`) || !strings.Contains(a.raw, "loopback") {
			t.Errorf("tenant key registering %s = %d %s, want 400 on /url naming loopback", u, a.status, a.raw)
		}
	}
	// The tenant cannot grant itself the allowance.
	a := h.call("key-acme", "PATCH", "/v1/tenants/acme", map[string]any{"settings": map[string]any{"allow_private_destinations": true}})
	if a.status != http.StatusBadRequest || !strings.Contains(a.raw, "/settings/allow_private_destinations") {
		t.Errorf("tenant enabling its own allowance = %d %s", a.status, a.raw)
	}

	// The operator may; the subscription carries the grant.
	a = h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": loop, "events": []string{"*"}}, http.StatusCreated)
	id := a.body["id"].(string)
	if a.body["operator_allowed"] != true {
		t.Errorf("operator's loopback subscription lacks operator_allowed: %s", a.raw)
	}
	// Testing it names the class of failure, not the NATS INFO banner.
	a = h.call("key-acme", "POST", "/v1/tenants/acme/subscriptions/"+id+"/test", nil)
	if a.status != http.StatusOK || a.body["error_class"] != urlguard.FailProtocol {
		t.Errorf("test call against NATS = %d %s, want error_class %s", a.status, a.raw, urlguard.FailProtocol)
	}
	for _, leak := range []string{"INFO", "server_id", "jetstream", "max_payload"} {
		if strings.Contains(a.raw, leak) {
			t.Errorf("test call echoes the peer's bytes (%s): %s", leak, a.raw)
		}
	}

	// The tenant may not move it elsewhere on loopback.
	if a := h.call("key-acme", "PATCH", "/v1/tenants/acme/subscriptions/"+id, map[string]any{"url": "http://127.0.0.1:9/other"}); a.status != http.StatusBadRequest {
		t.Errorf("tenant re-pointing the operator's subscription = %d %s", a.status, a.raw)
	}

	// With the operator's grant the tenant may register loopback.
	h.admin("PATCH", "/v1/tenants/acme", map[string]any{"settings": map[string]any{"allow_private_destinations": true}}, http.StatusOK)
	a = h.call("key-acme", "POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"*"}})
	if a.status != http.StatusCreated || a.body["operator_allowed"] != true {
		t.Errorf("enabled tenant registering loopback = %d %s", a.status, a.raw)
	}
	// A tenant's PATCH of its settings without the member keeps the grant.
	a = h.call("key-acme", "PATCH", "/v1/tenants/acme", map[string]any{"settings": map[string]any{"ingest_rate_limit": 10}})
	if a.status != http.StatusOK || !strings.Contains(a.raw, `"allow_private_destinations":true`) {
		t.Errorf("tenant settings patch = %d %s", a.status, a.raw)
	}
}

// A subscription without the grant dials global addresses only, even when
// the registry's allow-list covers the address (its host may have been
// re-pointed at loopback after registration).
func TestTestCallWithoutGrantRefusesAllowListedAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rc := &receiver{}
	rsrv := httptest.NewServer(rc)
	t.Cleanup(rsrv.Close)
	sub := testSub(h, rsrv.URL)
	res, err := h.svc.sendTest(context.Background(), sub)
	if err != nil || res.ErrorClass != urlguard.FailBlocked || rc.count() != 0 {
		t.Errorf("ungranted loopback test call = %+v %v, %d requests", res, err, rc.count())
	}
	sub.OperatorAllowed = true
	if res, err := h.svc.sendTest(context.Background(), sub); err != nil || !res.Delivered || rc.count() != 1 {
		t.Errorf("granted test call = %+v %v", res, err)
	}
}

// Each failure of a test call is named by class, in Herald's words.
func TestTestCallErrorClasses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.TestTimeout = 500 * time.Millisecond })

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + closed.Addr().String() + "/"
	closed.Close()

	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(plain.Close)

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "receiver says no", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)

	for _, c := range []struct {
		url, class, body string
	}{
		{refusedURL, urlguard.FailRefused, ""},
		{hang.URL, urlguard.FailTimeout, ""},
		{strings.Replace(plain.URL, "http://", "https://", 1), urlguard.FailTLS, ""},
		{failing.URL, testClassHTTPStatus, "receiver says no"},
	} {
		sub := testSub(h, c.url)
		sub.OperatorAllowed = true
		res, err := h.svc.sendTest(context.Background(), sub)
		if err != nil || res.ErrorClass != c.class || res.Error == "" || res.Delivered || !strings.Contains(res.Body, c.body) {
			t.Errorf("%s: %+v %v, want class %s", c.url, res, err, c.class)
		}
		if strings.Contains(res.Error, "127.0.0.1") {
			t.Errorf("%s: the error repeats the address: %s", c.url, res.Error)
		}
	}
}

// testSub is a stored-looking subscription to u, with a signing secret.
func testSub(h *harness, u string) subscription.Subscription {
	sec, _ := h.svc.newSecret()
	return subscription.Subscription{ID: "sub_x", Tenant: "acme", URL: u,
		Auth: subscription.Auth{Type: subscription.AuthNone, Secrets: []subscription.Secret{sec}}}
}

// A subscription stored without the grant (before it existed) gets it
// when the operator writes its URL again, even unchanged.
func TestOperatorPatchGrantsStoredURL(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	a := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"*"}}, http.StatusCreated)
	id := a.body["id"].(string)
	sub, rev, err := h.svc.loadSub(context.Background(), "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	sub.OperatorAllowed = false
	raw, _ := json.Marshal(sub)
	if _, err := h.svc.subKV().Update(context.Background(), subscription.Key("acme", id), raw, rev); err != nil {
		t.Fatal(err)
	}
	// The tenant re-sending it changes nothing: no grant.
	if a := h.call("key-acme", "PATCH", "/v1/tenants/acme/subscriptions/"+id, map[string]any{"url": sub.URL}); a.status != http.StatusOK || a.body["operator_allowed"] == true {
		t.Errorf("tenant re-sending a loopback URL = %d %s", a.status, a.raw)
	}
	if a := h.admin("PATCH", "/v1/tenants/acme/subscriptions/"+id, map[string]any{"url": sub.URL}, http.StatusOK); a.body["operator_allowed"] != true {
		t.Errorf("operator re-sending the URL: %s", a.raw)
	}
}

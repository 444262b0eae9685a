package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/apikey"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// TestParentKeyManagesItsSubtree: with real API keys (the services' key
// authenticator over the api-keys bucket, the tenant tree read from the
// tenants bucket), an account's key manages its sub-accounts and projects,
// and a sub-account's key reaches neither its parent nor its sibling.
func TestParentKeyManagesItsSubtree(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	kv, err := bus.EnsureBucket(ctx, h.ns.JS, contract.Bucket(contract.BucketAPIKeys, contract.DefaultTopology))
	if err != nil {
		t.Fatal(err)
	}
	// Serve the same registry behind the real key authenticator.
	h.svc.auth = apiauth.Chain{apiauth.NewAdminToken(adminToken), service.NewKeyAuthenticator(h.ns.JS)}
	mux := http.NewServeMux()
	h.svc.Routes(mux)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)

	h.tenant("acme", "account", "")
	h.tenant("acme-eu", "subaccount", "acme")
	h.tenant("acme-eu-web", "project", "acme-eu")
	h.tenant("acme-us", "subaccount", "acme")
	h.tenant("beta", "account", "")
	// Keys are issued as the collector does (it owns the bucket), without
	// importing it: a new record stored in the api-keys bucket.
	issue := func(tenant, name string) string {
		t.Helper()
		rec, key := apikey.New(tenant, name, "admin")
		if err := service.CreateAPIKey(ctx, kv, rec); err != nil {
			t.Fatal(err)
		}
		return key
	}
	acmeKey := issue("acme", "ops")
	euKey := issue("acme-eu", "eu")

	expect := func(token, method, path string, body any, want int) answer {
		t.Helper()
		a := h.call(token, method, path, body)
		if a.status != want {
			t.Fatalf("%s %s = %d %s, want %d", method, path, a.status, a.raw, want)
		}
		return a
	}
	ids := func(a answer) []string {
		var out []string
		for _, it := range a.body["items"].([]any) {
			out = append(out, it.(map[string]any)["id"].(string))
		}
		return out
	}
	// A global address: a key may not register the operator's allow-listed
	// ranges. Registration resolves and classifies it; nothing dials it.
	sub := map[string]any{"url": "https://8.8.8.8/hook", "events": []string{"alert.*"}}

	// Down: the account's key acts on the whole subtree.
	expect(acmeKey, "GET", "/v1/tenants/acme-eu", nil, http.StatusOK)
	expect(acmeKey, "GET", "/v1/tenants/acme-eu-web", nil, http.StatusOK)
	expect(acmeKey, "PATCH", "/v1/tenants/acme-eu", map[string]any{"name": "Acme Europe"}, http.StatusOK)
	created := expect(acmeKey, "POST", "/v1/tenants/acme-eu-web/subscriptions", sub, http.StatusCreated)
	expect(acmeKey, "POST", "/v1/tenants/acme-eu-web/subscriptions/"+created.body["id"].(string)+"/pause", nil, http.StatusOK)
	expect(acmeKey, "POST", "/v1/tenants", map[string]any{"id": "acme-eu-db", "name": "DB", "kind": "project", "parent": "acme-eu"}, http.StatusCreated)
	if got := ids(expect(acmeKey, "GET", "/v1/tenants", nil, http.StatusOK)); !slices.Equal(got, []string{"acme", "acme-eu", "acme-eu-db", "acme-eu-web", "acme-us"}) {
		t.Errorf("account key lists %v", got)
	}
	// Across: never another account.
	a := expect(acmeKey, "GET", "/v1/tenants/beta", nil, http.StatusForbidden)
	if !strings.Contains(a.raw, "an API key of acme acts for acme and the tenants below it") {
		t.Errorf("403 detail: %s", a.raw)
	}
	expect(acmeKey, "POST", "/v1/tenants/beta/subscriptions", sub, http.StatusForbidden)

	// Up and sideways: the sub-account's key reaches its own subtree only.
	expect(euKey, "GET", "/v1/tenants/acme-eu-web", nil, http.StatusOK)
	expect(euKey, "POST", "/v1/tenants/acme-eu-db/subscriptions", sub, http.StatusCreated)
	expect(euKey, "GET", "/v1/tenants/acme", nil, http.StatusForbidden)
	expect(euKey, "PATCH", "/v1/tenants/acme", map[string]any{"name": "mine now"}, http.StatusForbidden)
	expect(euKey, "GET", "/v1/tenants/acme/subscriptions", nil, http.StatusForbidden)
	expect(euKey, "GET", "/v1/tenants/acme-us", nil, http.StatusForbidden)
	expect(euKey, "POST", "/v1/tenants/acme-us/subscriptions", sub, http.StatusForbidden)
	expect(euKey, "POST", "/v1/tenants", map[string]any{"id": "acme-x", "name": "X", "parent": "acme"}, http.StatusForbidden)
	expect(euKey, "POST", "/v1/tenants", map[string]any{"id": "root-x", "name": "X"}, http.StatusForbidden)
	expect(euKey, "DELETE", "/v1/tenants/acme?cascade=true", nil, http.StatusForbidden)
	if got := ids(expect(euKey, "GET", "/v1/tenants", nil, http.StatusOK)); !slices.Equal(got, []string{"acme-eu", "acme-eu-db", "acme-eu-web"}) {
		t.Errorf("sub-account key lists %v", got)
	}
	expect(adminToken, "GET", "/v1/tenants/acme", nil, http.StatusOK)
}

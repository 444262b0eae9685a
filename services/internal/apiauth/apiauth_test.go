package apiauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// parents is a Hierarchy over a map: tenant -> parent.
type parents map[string]string

func (p parents) Parent(_ context.Context, tenant string) (string, error) {
	if tenant == "broken" {
		return "", errors.New("bucket unavailable")
	}
	parent, ok := p[tenant]
	if !ok {
		return "", ErrUnknownTenant
	}
	return parent, nil
}

// acme -> acme-eu -> acme-eu-web; acme -> acme-us; beta; a cycle x <-> y.
var tree = parents{
	"acme": "", "acme-eu": "acme", "acme-eu-web": "acme-eu", "acme-us": "acme", "beta": "",
	"x": "y", "y": "x", "under-broken": "broken",
}

func TestMayActForWalksDownNeverUpOrAcross(t *testing.T) {
	ctx := context.Background()
	account := Principal{Tenant: "acme", Tree: tree}
	sub := Principal{Tenant: "acme-eu", Tree: tree}
	for _, c := range []struct {
		name   string
		p      Principal
		tenant string
		want   bool
	}{
		{"own tenant", account, "acme", true},
		{"account to its sub-account", account, "acme-eu", true},
		{"account to a project two levels down", account, "acme-eu-web", true},
		{"account to another account", account, "beta", false},
		{"sub-account to its project", sub, "acme-eu-web", true},
		{"sub-account to its parent", sub, "acme", false},
		{"sub-account to its sibling", sub, "acme-us", false},
		{"unknown tenant", account, "nobody", false},
		{"a cycle ends", account, "x", false},
		{"no tree: own tenant only", Principal{Tenant: "acme"}, "acme-eu", false},
		{"admin", Principal{Admin: true}, "anything", true},
	} {
		got, err := c.p.MayActFor(ctx, c.tenant)
		if err != nil || got != c.want {
			t.Errorf("%s: MayActFor(%s) = %v, %v; want %v", c.name, c.tenant, got, err, c.want)
		}
	}
	if _, err := account.MayActFor(ctx, "under-broken"); err == nil {
		t.Error("a tree that cannot be read gave no error")
	}
}

func TestForTenantAnswers(t *testing.T) {
	h := Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ForTenant(w, r, r.PathValue("tenant")) {
			w.WriteHeader(http.StatusNoContent)
		}
	}), keyAuth{"k-eu": "acme-eu"})
	mux := http.NewServeMux()
	mux.Handle("GET /t/{tenant}", h)
	for path, want := range map[string]int{"/t/acme-eu-web": 204, "/t/acme": 403, "/t/acme-us": 403, "/t/under-broken": 503} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer k-eu")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("%s = %d %s, want %d", path, rec.Code, rec.Body, want)
		}
		if want == 403 && !strings.Contains(rec.Body.String(), "an API key of acme-eu acts for acme-eu and the tenants below it") {
			t.Errorf("%s: 403 detail %s", path, rec.Body)
		}
		if want == 503 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", path)
		}
	}
}

type keyAuth map[string]string

func (k keyAuth) Authenticate(r *http.Request) (Principal, error) {
	tok, _ := BearerToken(r)
	if k[tok] == "" {
		return Principal{}, ErrNoCredentials
	}
	return Principal{Actor: "apikey:" + k[tok], Tenant: k[tok], Tree: tree}, nil
}

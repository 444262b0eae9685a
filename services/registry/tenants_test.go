package registry

import (
	"net/http"
	"strings"
	"testing"
)

// TestTenantKindDefaults: kind may be omitted; it follows from the parent.
// A kind that is given and contradicts the parent is still refused.
func TestTenantKindDefaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)

	a := h.admin("POST", "/v1/tenants", map[string]any{"id": "acme", "name": "Acme"}, http.StatusCreated)
	if a.body["kind"] != "account" || a.body["parent"] != nil {
		t.Errorf("no kind, no parent = %s, want an account", a.raw)
	}
	a = h.admin("POST", "/v1/tenants", map[string]any{"id": "acme-eu", "name": "Acme EU", "parent": "acme"}, http.StatusCreated)
	if a.body["kind"] != "subaccount" || a.body["parent"] != "acme" {
		t.Errorf("no kind, a parent = %s, want a subaccount of acme", a.raw)
	}
	h.admin("GET", "/v1/tenants/acme-eu", nil, http.StatusOK)
	h.tenant("web", "project", "acme-eu")

	for _, c := range []struct {
		name   string
		body   map[string]any
		detail string
	}{
		{"account with a parent", map[string]any{"id": "x1", "name": "X", "kind": "account", "parent": "acme"}, "an account has no parent"},
		{"project without a parent", map[string]any{"id": "x2", "name": "X", "kind": "project"}, "a project needs a parent"},
		{"subaccount without a parent", map[string]any{"id": "x3", "name": "X", "kind": "subaccount"}, "a subaccount needs a parent"},
		{"defaulted subaccount under a project", map[string]any{"id": "x4", "name": "X", "parent": "web"}, "a subaccount (the default kind with a parent; set kind to project for a project) cannot belong to a project"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := h.admin("POST", "/v1/tenants", c.body, http.StatusBadRequest)
			if got := pointers(a)["/parent"]; !strings.HasPrefix(got, c.detail) {
				t.Errorf("/parent = %q, want %q", got, c.detail)
			}
		})
	}
	h.admin("GET", "/v1/tenants/x4", nil, http.StatusNotFound)
}

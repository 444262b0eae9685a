package registry

import (
	"net/http"
	"strings"
	"testing"
)

func TestEventTypeCatalog(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")

	if a := h.call("", "GET", "/v1/event-types", nil); a.status != http.StatusUnauthorized {
		t.Errorf("no credentials = %d", a.status)
	}
	a := h.call("key-acme", "GET", "/v1/event-types", nil)
	if a.status != http.StatusOK {
		t.Fatalf("GET /v1/event-types = %d %s", a.status, a.raw)
	}
	byName := map[string]map[string]any{}
	for _, it := range a.body["items"].([]any) {
		e := it.(map[string]any)
		byName[e["name"].(string)] = e
	}
	for _, name := range []string{"vmanage.alarm", "lmc.alert", "device.operation.result", "alert.opened", "alert.resolved",
		"operation.timed_out", "server.updated", "account.deleted", "subscription.disabled", "endpoint.disabled"} {
		e, ok := byName[name]
		if !ok {
			t.Errorf("%s missing from the catalog", name)
			continue
		}
		schema, _ := e["schema"].(map[string]any)
		if e["description"] == "" || schema["title"] != name || e["example"] == nil {
			t.Errorf("%s: %v", name, e)
		}
	}
	if byName["vmanage.alarm"]["delivered"] != false || byName["alert.opened"]["delivered"] != true {
		t.Errorf("delivered flags: %v %v", byName["vmanage.alarm"]["delivered"], byName["alert.opened"]["delivered"])
	}
	if _, ok := byName["herald.attempt"]; ok {
		t.Error("Herald's stream records are listed as event types")
	}
	a = h.admin("GET", "/v1/event-types?category=operation", nil, http.StatusOK)
	for _, it := range a.body["items"].([]any) {
		if n := it.(map[string]any)["name"].(string); !strings.HasPrefix(n, "operation.") {
			t.Errorf("?category=operation lists %s", n)
		}
	}
	a = h.admin("GET", "/v1/event-types?category=nope", nil, http.StatusBadRequest)
	if !strings.Contains(pointers(a)["category"], "want source, alert") {
		t.Errorf("bad category: %s", a.raw)
	}
}

// TestSubscriptionEventsChecked: exact names are checked against the
// catalog; patterns are free.
func TestSubscriptionEventsChecked(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	h.admin("POST", "/v1/tenants", map[string]any{"id": "lab", "name": "Lab", "settings": map[string]any{"allow_unknown_types": true}}, http.StatusCreated)
	create := func(tenant string, events ...string) answer {
		return h.call(adminToken, "POST", "/v1/tenants/"+tenant+"/subscriptions", map[string]any{"url": "http://127.0.0.1:9/h", "events": events})
	}

	a := create("acme", "alert.*", "alert.opend", "server.rebooted", "vmanage.alarm", "operation.timed_out", "*", "custom.*")
	if a.status != http.StatusBadRequest {
		t.Fatalf("create = %d %s", a.status, a.raw)
	}
	p := pointers(a)
	if len(p) != 3 {
		t.Errorf("got %d errors, want 3 (/events/1, 2, 3): %v", len(p), p)
	}
	if !strings.HasPrefix(p["/events/1"], "unknown event type alert.opend; did you mean alert.opened") {
		t.Errorf("typo: %q", p["/events/1"])
	}
	if got := p["/events/2"]; !strings.HasPrefix(got, "unknown event type server.rebooted; near matches: ") ||
		!strings.Contains(got, "server.created") || !strings.Contains(got, "server.*") {
		t.Errorf("unknown name: %q", got)
	}
	if got := p["/events/3"]; !strings.Contains(got, "never delivered") || !strings.Contains(got, "alert.opened") {
		t.Errorf("source type: %q", got)
	}
	if a := create("acme", "alert.*", "operation.timed_out", "subscription.disabled", "*", "custom.*"); a.status != http.StatusCreated {
		t.Errorf("known names and patterns = %d %s", a.status, a.raw)
	}

	// A tenant that allows custom types may name one; a typo is still refused.
	if a := create("lab", "server.rebooted"); a.status != http.StatusCreated {
		t.Errorf("custom type on lab = %d %s", a.status, a.raw)
	}
	a = create("lab", "alert.resolvd")
	if !strings.Contains(pointers(a)["/events/0"], "did you mean alert.resolved") {
		t.Errorf("typo on lab = %d %s", a.status, a.raw)
	}

	// PATCH is checked too.
	a = h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/p", "events": []string{"alert.*"}}, http.StatusCreated)
	id := a.body["id"].(string)
	a = h.admin("PATCH", "/v1/tenants/acme/subscriptions/"+id, map[string]any{"events": []string{"endpoint.disable"}}, http.StatusBadRequest)
	if !strings.Contains(pointers(a)["/events/0"], "did you mean endpoint.disabled") {
		t.Errorf("patch typo: %s", a.raw)
	}
}

// TestOperatorAllowsUnknownTypes: HERALD_REGISTRY_ALLOW_UNKNOWN_TYPES admits
// custom names for every tenant (the embedded default sets it).
func TestOperatorAllowsUnknownTypes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.AllowUnknownTypes = true })
	h.tenant("acme", "account", "")
	h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/h", "events": []string{"device.rebooted"}}, http.StatusCreated)
	h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/h", "events": []string{"alert.opend"}}, http.StatusBadRequest)
}

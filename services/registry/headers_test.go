package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
)

// Custom headers named like credentials, or marked secret, are sealed at
// rest, hinted in views, absent from CHANGES and logs, and sent as they
// were written.
func TestSecretHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	rc := &receiver{}
	rsrv := httptest.NewServer(rc)
	t.Cleanup(rsrv.Close)
	const apiKey, custom, rotated = "sk_live_PLANTED_0001", "planted-custom-0002", "sk_live_PLANTED_0003"
	secrets := []string{apiKey, custom, rotated}

	a := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": rsrv.URL, "events": []string{"*"},
		"headers": map[string]any{"X-Api-Key": apiKey, "X-Team": "noc", "X-Custom": map[string]any{"value": custom, "secret": true}}}, http.StatusCreated)
	id := a.body["id"].(string)
	hdrs := a.body["headers"].(map[string]any)
	if hdrs["X-Team"] != "noc" {
		t.Errorf("plain header = %v", hdrs["X-Team"])
	}
	for name, hint := range map[string]string{"X-Api-Key": "…0001", "X-Custom": "…0002"} {
		v, _ := hdrs[name].(map[string]any)
		if v["secret"] != true || v["hint"] != hint {
			t.Errorf("%s shown as %v, want secret with hint %s", name, hdrs[name], hint)
		}
	}
	get := h.admin("GET", "/v1/tenants/acme/subscriptions/"+id, nil, http.StatusOK)
	e, err := h.svc.subKV().Get(context.Background(), subscription.Key("acme", id))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{apiKey, custom} {
		for where, text := range map[string]string{"create answer": a.raw, "GET": get.raw, "stored record": string(e.Value())} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds the secret header value %s", where, s)
			}
		}
	}

	// The test call sends them as written.
	h.admin("POST", "/v1/tenants/acme/subscriptions/"+id+"/test", nil, http.StatusOK)
	req, _ := rc.last(t)
	if req.Header.Get("X-Api-Key") != apiKey || req.Header.Get("X-Custom") != custom || req.Header.Get("X-Team") != "noc" {
		t.Errorf("sent headers %v", req.Header)
	}

	// A view read back and resent keeps the secrets.
	h.admin("PATCH", "/v1/tenants/acme/subscriptions/"+id, map[string]any{"headers": get.body["headers"]}, http.StatusOK)
	h.admin("POST", "/v1/tenants/acme/subscriptions/"+id+"/test", nil, http.StatusOK)
	if req, _ := rc.last(t); req.Header.Get("X-Api-Key") != apiKey || req.Header.Get("X-Custom") != custom {
		t.Errorf("after a round trip, sent %v", req.Header)
	}
	// A new value replaces it, and the change is recorded without it.
	p := h.admin("PATCH", "/v1/tenants/acme/subscriptions/"+id, map[string]any{"headers": map[string]any{"X-Api-Key": rotated, "X-Team": "noc"}}, http.StatusOK)
	if v, _ := p.body["headers"].(map[string]any)["X-Api-Key"].(map[string]any); v["hint"] != "…0003" {
		t.Errorf("after rotation: %s", p.raw)
	}
	h.admin("POST", "/v1/tenants/acme/subscriptions/"+id+"/test", nil, http.StatusOK)
	if req, _ := rc.last(t); req.Header.Get("X-Api-Key") != rotated || req.Header.Get("X-Custom") != "" {
		t.Errorf("after rotation, sent %v", req.Header)
	}

	var headerChanges int
	for _, m := range h.changes(context.Background()) {
		raw := string(m.Data())
		for _, s := range secrets {
			if strings.Contains(raw, s) {
				t.Errorf("CHANGES holds %s: %s", s, raw)
			}
		}
		if strings.Contains(raw, "…000") {
			t.Errorf("CHANGES holds a hint: %s", raw)
		}
		if _, _, ch := decodeChange(t, m); ch.Diff["headers"].New != nil && ch.Action == "updated" {
			headerChanges++
		}
	}
	if headerChanges != 1 {
		t.Errorf("%d updates record a headers change, want 1 (the rotation; the round trip changed nothing)", headerChanges)
	}
	for _, s := range secrets {
		if strings.Contains(h.logs.String(), s) {
			t.Errorf("logs hold %s", s)
		}
	}
}

func TestSecretHeaderValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	a := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"},
		"headers": map[string]any{
			"X-Auth-Token": "",                                   // a secret needs a value
			"X-Number":     5,                                    // neither a string nor an object
			"X-Object":     map[string]any{"value": "v", "x": 1}, // unknown member
			"X-Dup":        "a", "x-dup": "b",
		}}, http.StatusBadRequest)
	got := pointers(a)
	for _, p := range []string{"/headers/X-Auth-Token", "/headers/X-Number", "/headers/X-Object"} {
		if _, ok := got[p]; !ok {
			t.Errorf("no error at %s: %s", p, a.raw)
		}
	}
	if _, ok1 := got["/headers/X-Dup"]; !ok1 {
		if _, ok2 := got["/headers/x-dup"]; !ok2 {
			t.Errorf("no error for a duplicate header: %s", a.raw)
		}
	}
}

// A credential-named header stored in plain text before this release is
// hinted in views at once and sealed when the subscription is next
// written.
func TestLegacyPlainSecretHeaderIsSealedOnWrite(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	a := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"}}, http.StatusCreated)
	id := a.body["id"].(string)
	sub, rev, err := h.svc.loadSub(context.Background(), "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	const legacy = "legacy-PLANTED-secret-9"
	sub.Headers = map[string]string{"X-Api-Key": legacy}
	raw, _ := json.Marshal(sub)
	if _, err := h.svc.subKV().Update(context.Background(), subscription.Key("acme", id), raw, rev); err != nil {
		t.Fatal(err)
	}
	if g := h.admin("GET", "/v1/tenants/acme/subscriptions/"+id, nil, http.StatusOK); strings.Contains(g.raw, legacy) {
		t.Errorf("GET shows a legacy plain secret header: %s", g.raw)
	}
	h.admin("POST", "/v1/tenants/acme/subscriptions/"+id+"/pause", nil, http.StatusOK)
	e, err := h.svc.subKV().Get(context.Background(), subscription.Key("acme", id))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(e.Value()), legacy) {
		t.Error("the stored record still holds the header in plain text after a write")
	}
	sub, _, _ = h.svc.loadSub(context.Background(), "acme", id)
	if v, err := h.deps.Keys.Open(sub.SecretHeaders["X-Api-Key"].Sealed); err != nil || v != legacy {
		t.Errorf("sealed header opens to %q, %v", v, err)
	}
}

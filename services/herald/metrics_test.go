package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// get fetches url with token (none if empty) and returns status and body.
func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /metrics is the operator's: on the API listener it needs the admin
// token (a tenant key gets 403); the admin listener serves it and the
// health probes openly, and nothing of the API. /healthz and /readyz stay
// open on the API listener for orchestrators.
func TestMetricsAreTheOperators(t *testing.T) {
	h := startHeraldWith(t, func(c *Config) { c.AdminAddr = "127.0.0.1:0" })
	call(t, h, "POST", "/v1/tenants", "application/json", map[string]any{"id": "acme", "name": "Acme", "kind": "account"}, http.StatusCreated)
	key, _ := call(t, h, "POST", "/v1/tenants/acme/keys", "application/json", map[string]any{"name": "ci"}, http.StatusCreated)["key"].(string)
	if key == "" {
		t.Fatal("no tenant API key")
	}

	if code, body := get(t, h.HTTPURL+"/metrics", ""); code != http.StatusUnauthorized || strings.Contains(body, "herald_") {
		t.Errorf("API /metrics without a token = %d %.200s, want 401", code, body)
	}
	if code, body := get(t, h.HTTPURL+"/metrics", key); code != http.StatusForbidden || strings.Contains(body, "herald_") {
		t.Errorf("API /metrics with a tenant key = %d %.200s, want 403", code, body)
	}
	if code, body := get(t, h.HTTPURL+"/metrics", h.AdminToken); code != http.StatusOK || !strings.Contains(body, "herald_") {
		t.Errorf("API /metrics with the admin token = %d %.200s", code, body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get(t, h.HTTPURL+p, ""); code != http.StatusOK {
			t.Errorf("API %s = %d, want 200 without a token", p, code)
		}
	}

	if h.AdminURL == "" {
		t.Fatal("no admin listener")
	}
	if code, body := get(t, h.AdminURL+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "herald_") {
		t.Errorf("admin /metrics = %d %.200s", code, body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := get(t, h.AdminURL+p, ""); code != http.StatusOK {
			t.Errorf("admin %s = %d", p, code)
		}
	}
	if code, _ := get(t, h.AdminURL+"/v1/tenants", h.AdminToken); code != http.StatusNotFound {
		t.Errorf("admin listener serves the API: %d", code)
	}
}

// The quickstart's loopback receiver is the operator's to register: the
// admin token may, a tenant key may not.
func TestEmbeddedLoopbackIsTheOperators(t *testing.T) {
	h := startHerald(t)
	call(t, h, "POST", "/v1/tenants", "application/json", map[string]any{"id": "acme", "name": "Acme", "kind": "account"}, http.StatusCreated)
	key, _ := call(t, h, "POST", "/v1/tenants/acme/keys", "application/json", map[string]any{"name": "ci"}, http.StatusCreated)["key"].(string)
	body := `{"url":"http://127.0.0.1:9000/hook","events":["server.rebooted"]}`
	req, _ := http.NewRequest("POST", h.HTTPURL+"/v1/tenants/acme/subscriptions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "loopback") {
		t.Errorf("tenant key registering a loopback receiver = %d %s, want 400", resp.StatusCode, raw)
	}
	call(t, h, "POST", "/v1/tenants/acme/subscriptions", "application/json", body, http.StatusCreated)
}

package engine

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

const apiAdminToken = "test-admin-token-123456"

// tenantKeys stands in for the collector's API keys: key -> tenant.
type tenantKeys map[string]string

func (k tenantKeys) Authenticate(r *http.Request) (apiauth.Principal, error) {
	tok, ok := apiauth.BearerToken(r)
	if !ok || k[tok] == "" {
		return apiauth.Principal{}, apiauth.ErrNoCredentials
	}
	return apiauth.Principal{Actor: "apikey:" + k[tok] + "/k1", Tenant: k[tok]}, nil
}

// startAPI runs an engine on srv and serves its API.
func startAPI(t *testing.T, srv *natstest.Server, cfg Config) *httptest.Server {
	t.Helper()
	cfg.Workers, cfg.OperationDeadline = 4, time.Hour
	s, err := New(cfg, service.Deps{JS: srv.JS, Logger: slog.New(slog.DiscardHandler), Topology: contract.DefaultTopology,
		Auth: apiauth.Chain{apiauth.NewAdminToken(apiAdminToken), tenantKeys{"key-acme": tenant, "key-beta": "beta"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine Run: %v", err)
		}
	})
	natstest.Eventually(t, 20*time.Second, s.Ready)
	mux := http.NewServeMux()
	s.Routes(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

func get(t *testing.T, hs *httptest.Server, token, path string, want int) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, hs.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s = %d %s, want %d", path, resp.StatusCode, raw, want)
	}
	if want >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET %s: content type %q", path, resp.Header.Get("Content-Type"))
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("GET %s: %s: %v", path, raw, err)
	}
	return body
}

func items(body map[string]any) []map[string]any {
	var out []map[string]any
	for _, it := range body["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

func TestAlertsAPI(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	hs := startAPI(t, srv, Config{})
	base := "/v1/tenants/" + tenant

	publish(t, srv.JS, 1, alarm("a1", true, "10.1.0.1"))
	waitTypes(t, srv.JS, "alert.", "alert.opened")
	publish(t, srv.JS, 1, alarm("a2", true, "10.1.0.2"))
	waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.deteriorated")
	publish(t, srv.JS, 1, alarm("a3", false, "10.1.0.1", "10.1.0.2"))
	waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.deteriorated", "alert.resolved")
	publish(t, srv.JS, 1, clcTrigger("c1", "triggered"))
	sent := waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.deteriorated", "alert.resolved", "alert.opened")
	vmID, clcID := alertData(t, sent[0]).AlertID, alertData(t, sent[3]).AlertID

	all := items(get(t, hs, apiAdminToken, base+"/alerts", http.StatusOK))
	if len(all) != 2 {
		t.Fatalf("alerts = %v, want 2", all)
	}
	open := items(get(t, hs, "key-acme", base+"/alerts?state=open", http.StatusOK))
	if len(open) != 1 || open[0]["alertId"] != clcID || open[0]["state"] != "open" || open[0]["transition"] != "opened" {
		t.Errorf("open alerts = %v, want only %s", open, clcID)
	}
	resolved := items(get(t, hs, "key-acme", base+"/alerts?state=resolved", http.StatusOK))
	if len(resolved) != 1 || resolved[0]["alertId"] != vmID || resolved[0]["sequence"] != 3.0 || resolved[0]["title"] != "System_Reboot_Issued" {
		t.Errorf("resolved alerts = %v, want only %s", resolved, vmID)
	}
	// Pages of one visit both, once.
	page := get(t, hs, apiAdminToken, base+"/alerts?limit=1", http.StatusOK)
	next, _ := page["next_cursor"].(string)
	page2 := get(t, hs, apiAdminToken, base+"/alerts?limit=1&cursor="+next, http.StatusOK)
	if next == "" || items(page)[0]["alertId"] == items(page2)[0]["alertId"] || page2["next_cursor"] != nil {
		t.Errorf("pages: %v then %v", page, page2)
	}

	// One alert with its transitions and the notifications they sent.
	one := get(t, hs, "key-acme", base+"/alerts/"+vmID, http.StatusOK)
	trs := one["transitions"].([]any)
	if one["state"] != "resolved" || len(trs) != 3 {
		t.Fatalf("alert %s = %v", vmID, one)
	}
	for i, want := range []string{"opened", "deteriorated", "resolved"} {
		tr := trs[i].(map[string]any)
		if tr["transition"] != want || tr["type"] != "alert."+want || tr["sequence"] != float64(i+1) ||
			tr["notificationId"] != sent[i].ID() || tr["published"] != true {
			t.Errorf("transition %d = %v, want %s sent as %s", i, tr, want, sent[i].ID())
		}
	}

	// A new life of the same key: the earlier one is still readable.
	publish(t, srv.JS, 1, alarm("a4", true, "10.1.0.1"))
	sent = waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.deteriorated", "alert.resolved", "alert.opened", "alert.opened")
	newID := alertData(t, sent[4]).AlertID
	if newID == vmID {
		t.Fatal("the new life kept the old alertId")
	}
	old := get(t, hs, apiAdminToken, base+"/alerts/"+vmID, http.StatusOK)
	if old["partial"] != true || old["state"] != "resolved" || len(old["transitions"].([]any)) != 3 {
		t.Errorf("earlier life = %v", old)
	}
	cur := get(t, hs, apiAdminToken, base+"/alerts/"+newID, http.StatusOK)
	if cur["state"] != "open" || len(cur["transitions"].([]any)) != 1 || cur["partial"] != nil {
		t.Errorf("current life = %v", cur)
	}

	p := get(t, hs, apiAdminToken, base+"/alerts/nope", http.StatusNotFound)
	if !strings.Contains(p["detail"].(string), `tenant acme has no alert "nope"`) {
		t.Errorf("404 detail: %v", p["detail"])
	}
	p = get(t, hs, apiAdminToken, base+"/alerts?state=closed&limit=0", http.StatusBadRequest)
	if errs := p["errors"].([]any); len(errs) != 2 {
		t.Errorf("400 errors: %v", errs)
	}
	get(t, hs, "", base+"/alerts", http.StatusUnauthorized)
	get(t, hs, "key-beta", base+"/alerts", http.StatusForbidden)
	get(t, hs, "key-beta", base+"/alerts/"+vmID, http.StatusForbidden)
	if got := items(get(t, hs, "key-beta", "/v1/tenants/beta/alerts", http.StatusOK)); len(got) != 0 {
		t.Errorf("beta sees acme's alerts: %v", got)
	}
}

func TestOperationsAPI(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	hs := startAPI(t, srv, Config{DeadlineOverride: 2 * time.Second})
	base := "/v1/tenants/" + tenant + "/operations/"
	const ok, late = "0b8a1f7d-4d0b-4c55-9c1f-0c8d9e218c1e", "226bd188-35e8-450f-b40b-b0c5f279f562"

	publish(t, srv.JS, 1,
		input{id: "r1", typ: typeOpRequested, data: map[string]any{"protocolo": ok, "router_id": "RTR-1", "operation": "reboot"}},
		input{id: "r2", typ: typeOpRequested, data: map[string]any{"protocolo": late, "router_id": "RTR-2", "operation": "reboot"}})
	waitTypes(t, srv.JS, "operation.", "operation.requested", "operation.requested")
	op := get(t, hs, "key-acme", base+ok, http.StatusOK)
	if op["state"] != "requested" || op["timedOut"] != false || op["deadline"] == nil || op["device"] != "RTR-1" {
		t.Errorf("requested = %v", op)
	}
	publish(t, srv.JS, 1, input{id: "x1", typ: typeOpResult, data: map[string]any{"protocolo": ok, "router_id": "RTR-1", "status": "success"}})
	waitTypes(t, srv.JS, "operation.", "operation.requested", "operation.requested", "operation.succeeded")
	// The path's protocol is case-insensitive, as the engine's key is.
	if op := get(t, hs, "key-acme", base+strings.ToUpper(ok), http.StatusOK); op["state"] != "succeeded" || op["late"] != nil || op["sequence"] != 2.0 {
		t.Errorf("succeeded = %v", op)
	}

	waitTypes(t, srv.JS, "operation.", "operation.requested", "operation.requested", "operation.succeeded", "operation.timed_out")
	if op := get(t, hs, apiAdminToken, base+late, http.StatusOK); op["state"] != "timed_out" || op["timedOut"] != true {
		t.Errorf("timed out = %v", op)
	}
	publish(t, srv.JS, 1, input{id: "x2", typ: typeOpResult, data: map[string]any{"protocolo": late, "router_id": "RTR-2", "status": "failure"}})
	waitTypes(t, srv.JS, "operation.", "operation.requested", "operation.requested", "operation.succeeded", "operation.timed_out", "operation.failed")
	if op := get(t, hs, apiAdminToken, base+late, http.StatusOK); op["state"] != "failed" || op["late"] != true || op["timedOut"] != true || op["status"] != "failure" {
		t.Errorf("late result = %v", op)
	}

	p := get(t, hs, apiAdminToken, base+"no-such-protocol", http.StatusNotFound)
	if !strings.Contains(p["detail"].(string), `no operation with protocol "no-such-protocol"`) {
		t.Errorf("404 detail: %v", p["detail"])
	}
	get(t, hs, "key-beta", base+ok, http.StatusForbidden)
	get(t, hs, "key-beta", "/v1/tenants/beta/operations/"+ok, http.StatusNotFound)
}

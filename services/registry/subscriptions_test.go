package registry

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/domain/secretbox"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
)

func TestSubscriptionValidationListsEveryError(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.AllowHTTP = false })
	h.tenant("acme", "account", "")
	a := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{
		"url":          "http://127.0.0.1:9/hook",
		"events":       []string{"alert.*", "Bad Type", "alert.opened"},
		"filter":       `data.severity == `,
		"headers":      map[string]string{"Webhook-Signature": "x", "X-Fine": "y", "CE-Type": "z", "Bad Header": "v"},
		"payload_mode": "xml",
		"retry_policy": "forever",
		"rate_limit":   -1,
		"status":       "disabled",
		"auth":         map[string]any{"type": "basic"},
	}, http.StatusBadRequest)
	p := pointers(a)
	for _, ptr := range []string{"/url", "/events/1", "/filter", "/headers/Webhook-Signature", "/headers/CE-Type", "/headers/Bad Header",
		"/payload_mode", "/retry_policy", "/rate_limit", "/status", "/auth/username", "/auth/password"} {
		if p[ptr] == "" {
			t.Errorf("no error for %s in %v", ptr, p)
		}
	}
	if len(p) != 12 {
		t.Errorf("got %d errors, want 12: %v", len(p), p)
	}
	if !strings.Contains(p["/url"], "https is required") {
		t.Errorf("url error: %s", p["/url"])
	}
	if !strings.Contains(p["/filter"], "line 1, column 18") {
		t.Errorf("filter error lacks the position: %s", p["/filter"])
	}
	if a.header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("content type %s", a.header.Get("Content-Type"))
	}

	// Required members, templates, mTLS pairs, SSRF with a clear reason.
	a = h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{}, http.StatusBadRequest)
	if p := pointers(a); p["/url"] == "" || p["/events"] == "" {
		t.Errorf("missing url/events: %v", p)
	}
	a = h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{
		"url": "https://169.254.169.254/latest", "events": []string{"*"}, "payload_mode": "template", "template": "{{ .data",
		"auth": map[string]any{"client_cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "client_key": "nope", "ca_cert": "nope"},
	}, http.StatusBadRequest)
	p = pointers(a)
	if !strings.Contains(p["/url"], "cloud metadata") || p["/template"] == "" || p["/auth/client_cert"] == "" || p["/auth/ca_cert"] == "" {
		t.Errorf("errors = %v", p)
	}
	a = h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "https://10.1.2.3/", "events": []string{"*"}}, http.StatusBadRequest)
	if !strings.Contains(pointers(a)["/url"], "private") {
		t.Errorf("private URL: %s", a.raw)
	}
}

func TestUnknownFieldAndMalformedJSON(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	a := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"}, "bogus": 1}, http.StatusBadRequest)
	if pointers(a)["/bogus"] == "" {
		t.Errorf("unknown field: %s", a.raw)
	}
	a = h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"}, "auth": map[string]any{"kind": "x"}}, http.StatusBadRequest)
	if pointers(a)["/kind"] == "" && !strings.Contains(a.raw, "kind") {
		t.Errorf("unknown nested field: %s", a.raw)
	}
	a = h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/", "events": "alert.opened"}, http.StatusBadRequest)
	if pointers(a)["/events"] == "" {
		t.Errorf("wrong type: %s", a.raw)
	}
	h.admin("POST", "/v1/tenants/acme/subscriptions", `{"url":`, http.StatusBadRequest)
	h.admin("POST", "/v1/tenants/acme/subscriptions", `{} {}`, http.StatusBadRequest)
	h.admin("POST", "/v1/tenants/acme/subscriptions", `{"description":"`+strings.Repeat("x", 2<<20)+`"}`, http.StatusRequestEntityTooLarge)
}

func TestQuota(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	h.tenant("proj", "project", "acme")
	body := map[string]any{"url": "http://127.0.0.1:9/", "events": []string{"*"}}
	for range 5 {
		h.admin("POST", "/v1/tenants/proj/subscriptions", body, http.StatusCreated)
	}
	a := h.admin("POST", "/v1/tenants/proj/subscriptions", body, http.StatusConflict)
	if !strings.Contains(a.raw, "at most 5") {
		t.Errorf("quota problem does not name the limit: %s", a.raw)
	}
	// A tenant's own quota overrides the operator default.
	h.admin("PATCH", "/v1/tenants/acme", map[string]any{"settings": map[string]any{"subscription_quota": 1}}, http.StatusOK)
	h.admin("POST", "/v1/tenants/acme/subscriptions", body, http.StatusCreated)
	a = h.admin("POST", "/v1/tenants/acme/subscriptions", body, http.StatusConflict)
	if !strings.Contains(a.raw, "at most 1") {
		t.Errorf("quota: %s", a.raw)
	}
}

// TestSubscriptionLifecycle covers create, get, list with filters and
// pagination, PATCH, pause, resume, delete, the secret shown once, and the
// CHANGES records with their redacted diffs.
func TestSubscriptionLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	a := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{
		"url": "http://127.0.0.1:9/hook?sig=abc", "events": []string{"alert.*", "operation.failed"},
		"filter": `data.severity == "Critical"`, "include_subaccounts": true,
		"auth":    map[string]any{"type": "bearer", "token": "bearer-tok-S3CRET", "ed25519": true},
		"headers": map[string]string{"X-Api-Key": "hdr-val-S3CRET"}, "retry_policy": "single",
		"rate_limit": 5, "description": "ops pager", "metadata": map[string]string{"team": "ops"},
	}, http.StatusCreated)
	secret, _ := a.body["secret"].(string)
	id, _ := a.body["id"].(string)
	if !strings.HasPrefix(secret, "whsec_") || !strings.HasPrefix(id, "sub_") {
		t.Fatalf("create = %s", a.raw)
	}
	if a.header.Get("Location") != "/v1/tenants/acme/subscriptions/"+id {
		t.Errorf("Location = %s", a.header.Get("Location"))
	}
	if strings.Contains(a.raw, "bearer-tok-S3CRET") || strings.Contains(a.raw, "sealed") {
		t.Errorf("create answer shows stored secrets: %s", a.raw)
	}
	h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/b", "events": []string{"server.*"}}, http.StatusCreated)
	h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/c", "events": []string{"*"}, "status": "paused"}, http.StatusCreated)

	get := h.admin("GET", "/v1/tenants/acme/subscriptions/"+id, nil, http.StatusOK)
	if get.body["auth"].(map[string]any)["token_set"] != true || get.body["retry_policy"] != "single" || get.body["payload_mode"] != "structured" {
		t.Errorf("get = %s", get.raw)
	}
	if n := len(get.body["auth"].(map[string]any)["secrets"].([]any)); n != 1 {
		t.Errorf("secrets listed: %d", n)
	}
	list := h.admin("GET", "/v1/tenants/acme/subscriptions", nil, http.StatusOK)
	if n := len(list.body["items"].([]any)); n != 3 {
		t.Errorf("list: %d items", n)
	}
	for q, want := range map[string]int{"?event=alert.opened": 2, "?event=server.created": 2, "?event=audit.x": 1, "?status=paused": 1, "?status=enabled&event=operation.failed": 1} {
		l := h.admin("GET", "/v1/tenants/acme/subscriptions"+q, nil, http.StatusOK)
		if n := len(l.body["items"].([]any)); n != want {
			t.Errorf("list%s: %d items, want %d", q, n, want)
		}
	}
	p1 := h.admin("GET", "/v1/tenants/acme/subscriptions?limit=2", nil, http.StatusOK)
	p2 := h.admin("GET", "/v1/tenants/acme/subscriptions?limit=2&cursor="+p1.body["next_cursor"].(string), nil, http.StatusOK)
	if len(p1.body["items"].([]any)) != 2 || len(p2.body["items"].([]any)) != 1 || p2.body["next_cursor"] != nil {
		t.Errorf("pages: %s / %s", p1.raw, p2.raw)
	}

	// PATCH is validated as a whole and keeps the secrets it is not given.
	a = h.admin("PATCH", "/v1/tenants/acme/subscriptions/"+id, map[string]any{"events": []string{}, "filter": "1 +"}, http.StatusBadRequest)
	if p := pointers(a); p["/events"] == "" || p["/filter"] == "" {
		t.Errorf("patch errors: %v", p)
	}
	a = h.admin("PATCH", "/v1/tenants/acme/subscriptions/"+id, map[string]any{"description": "new", "auth": map[string]any{"type": "bearer", "ed25519": true}}, http.StatusOK)
	if a.body["description"] != "new" || a.body["auth"].(map[string]any)["token_set"] != true {
		t.Errorf("patch = %s", a.raw)
	}
	a = h.admin("POST", "/v1/tenants/acme/subscriptions/"+id+"/pause", nil, http.StatusOK)
	if a.body["status"] != "paused" {
		t.Errorf("pause = %s", a.raw)
	}
	a = h.admin("POST", "/v1/tenants/acme/subscriptions/"+id+"/resume", nil, http.StatusOK)
	if a.body["status"] != "enabled" {
		t.Errorf("resume = %s", a.raw)
	}
	h.admin("DELETE", "/v1/tenants/acme/subscriptions/"+id, nil, http.StatusNoContent)
	h.admin("GET", "/v1/tenants/acme/subscriptions/"+id, nil, http.StatusNotFound)

	// CHANGES: one record per change, typed, with the tenant extension,
	// the actor and a diff; no secret anywhere.
	var types []string
	for _, m := range h.changes(context.Background()) {
		typ, tenant, ch := decodeChange(t, m)
		types = append(types, typ)
		if tenant != "acme" || ch.Actor != "admin" || ch.At.IsZero() {
			t.Errorf("change %s: tenant %q actor %q", typ, tenant, ch.Actor)
		}
		if m.Subject() != "changes.acme."+ch.Entity {
			t.Errorf("change subject %s", m.Subject())
		}
		if typ == "herald.change.subscription.updated" && ch.EntityID == id {
			if d, ok := ch.Diff["description"]; !ok || d.Old != "ops pager" || d.New != "new" {
				t.Errorf("update diff = %+v", ch.Diff)
			}
		}
		for _, s := range []string{secret, "bearer-tok-S3CRET", "hdr-val-S3CRET", "sealed\":\"v1:"} {
			if strings.Contains(string(m.Data()), s) {
				t.Errorf("change %s leaks %q: %s", typ, s, m.Data())
			}
		}
	}
	want := "herald.change.tenant.created herald.change.subscription.created herald.change.subscription.created herald.change.subscription.created " +
		"herald.change.subscription.updated herald.change.subscription.paused herald.change.subscription.resumed herald.change.subscription.deleted"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("changes:\n got %s\nwant %s", got, want)
	}
	// Secrets: in no GET, no list, no log.
	for _, s := range []string{secret, "bearer-tok-S3CRET", "hdr-val-S3CRET"} {
		if strings.Contains(get.raw, s) && s != "hdr-val-S3CRET" {
			t.Errorf("GET leaks %q", s)
		}
		if strings.Contains(list.raw, secret) {
			t.Errorf("list leaks the secret")
		}
		if strings.Contains(h.logs.String(), s) {
			t.Errorf("logs leak %q", s)
		}
	}
}

// receiver records what a test call sends.
type receiver struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, r)
	rc.body = append(rc.body, b)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(strings.Repeat("a", 2000)))
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

func (rc *receiver) last(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.reqs) == 0 {
		t.Fatal("receiver got nothing")
	}
	return rc.reqs[len(rc.reqs)-1], rc.body[len(rc.body)-1]
}

func TestTestCallAndRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	rc := &receiver{}
	rsrv := httptest.NewServer(rc)
	t.Cleanup(rsrv.Close)
	a := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{
		"url": rsrv.URL + "/hook", "events": []string{"*"},
		"auth":    map[string]any{"type": "basic", "username": "u", "password": "pw-S3CRET", "ed25519": true},
		"headers": map[string]string{"X-Team": "ops"},
	}, http.StatusCreated)
	id, oldSecret := a.body["id"].(string), a.body["secret"].(string)
	pk := h.admin("GET", "/v1/tenants/acme/subscriptions/"+id+"/public-key", nil, http.StatusOK)
	pub := pk.body["public_key"].(string)

	res := h.admin("POST", "/v1/tenants/acme/subscriptions/"+id+"/test", nil, http.StatusOK)
	if res.body["status"] != float64(202) || res.body["delivered"] != true || len(res.body["body"].(string)) != 1024 {
		t.Errorf("test result = %.300s", res.raw)
	}
	req, body := rc.last(t)
	for _, keys := range [][2][]string{{{oldSecret}, nil}, {nil, {pub}}} {
		v, err := webhook.NewVerifier(keys[0], keys[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(req.Header, body); err != nil {
			t.Errorf("verify with %v: %v", keys, err)
		}
	}
	var ce map[string]any
	if err := json.Unmarshal(body, &ce); err != nil || ce["type"] != "herald.test" || ce["tenant"] != "acme" || ce["specversion"] != "1.0" {
		t.Errorf("body = %s (%v)", body, err)
	}
	if req.Header.Get("Content-Type") != "application/cloudevents+json" || req.Header.Get("X-Team") != "ops" {
		t.Errorf("headers = %v", req.Header)
	}
	if u, p, ok := req.BasicAuth(); !ok || u != "u" || p != "pw-S3CRET" {
		t.Errorf("basic auth = %q %q %v", u, p, ok)
	}

	// Rotate: the new secret is returned once, and during the overlap both
	// the old and the new secret verify the same request.
	rot := h.admin("POST", "/v1/tenants/acme/subscriptions/"+id+"/rotate-secret", nil, http.StatusOK)
	newSecret := rot.body["secret"].(string)
	if newSecret == oldSecret || !strings.HasPrefix(newSecret, "whsec_") {
		t.Fatalf("rotate = %s", rot.raw)
	}
	secs := rot.body["auth"].(map[string]any)["secrets"].([]any)
	if len(secs) != 2 || secs[0].(map[string]any)["expires_at"] != nil || secs[1].(map[string]any)["expires_at"] == nil {
		t.Errorf("secrets after rotate = %v", secs)
	}
	h.admin("POST", "/v1/tenants/acme/subscriptions/"+id+"/test", nil, http.StatusOK)
	req, body = rc.last(t)
	if n := len(strings.Fields(req.Header.Get("webhook-signature"))); n != 3 {
		t.Errorf("want 2 v1 and 1 v1a signatures, got %q", req.Header.Get("webhook-signature"))
	}
	for _, s := range []string{oldSecret, newSecret} {
		v, _ := webhook.NewVerifier([]string{s}, nil)
		if err := v.Verify(req.Header, body); err != nil {
			t.Errorf("after rotation, %s… does not verify: %v", s[:8], err)
		}
	}
	// After the overlap only the new one signs.
	sub, _, err := h.svc.loadSub(context.Background(), "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	if got := sub.Auth.ActiveSecrets(time.Now().Add(25 * time.Hour)); len(got) != 1 || got[0].ID != secs[0].(map[string]any)["id"] {
		t.Errorf("active after overlap = %v", got)
	}
	for _, s := range []string{oldSecret, newSecret, "pw-S3CRET"} {
		if strings.Contains(h.logs.String(), s) {
			t.Errorf("logs leak a secret")
		}
	}
	get := h.admin("GET", "/v1/tenants/acme/subscriptions/"+id, nil, http.StatusOK)
	if strings.Contains(get.raw, newSecret) || strings.Contains(get.raw, oldSecret) {
		t.Error("GET shows a secret")
	}
}

func TestTestCallModesAndDialGuard(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	rc := &receiver{}
	rsrv := httptest.NewServer(rc)
	t.Cleanup(rsrv.Close)
	a := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": rsrv.URL, "events": []string{"*"}, "payload_mode": "binary"}, http.StatusCreated)
	h.admin("POST", "/v1/tenants/acme/subscriptions/"+a.body["id"].(string)+"/test", nil, http.StatusOK)
	req, body := rc.last(t)
	if req.Header.Get("ce-type") != "herald.test" || req.Header.Get("ce-tenant") != "acme" || !strings.Contains(string(body), "Test notification") {
		t.Errorf("binary mode: %v %s", req.Header, body)
	}
	v, _ := webhook.NewVerifier([]string{a.body["secret"].(string)}, nil)
	if err := v.Verify(req.Header, body); err != nil {
		t.Errorf("binary verify: %v", err)
	}
	a = h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": rsrv.URL, "events": []string{"*"}, "payload_mode": "template",
		"template": `{"text": "{{ .data.message }} for {{ .tenant }}"}`}, http.StatusCreated)
	h.admin("POST", "/v1/tenants/acme/subscriptions/"+a.body["id"].(string)+"/test", nil, http.StatusOK)
	if _, body := rc.last(t); string(body) != `{"text": "Test notification from Herald for acme"}` {
		t.Errorf("template body = %s", body)
	}

	// A registry without the loopback allowance refuses to dial it, even
	// for a subscription stored earlier (DNS may have changed since).
	strict, err := New(Config{SubscriptionQuota: 5, TestTimeout: 5 * time.Second}, h.deps)
	if err != nil {
		t.Fatal(err)
	}
	sub, _, err := h.svc.loadSub(context.Background(), "acme", a.body["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	n := rc.count()
	res, err := strict.sendTest(context.Background(), sub)
	if err != nil || !strings.Contains(res.Error, "loopback") || res.Status != 0 {
		t.Errorf("guarded test call = %+v, %v", res, err)
	}
	if strings.Contains(res.Error, rsrv.URL) {
		t.Errorf("error repeats the URL: %s", res.Error)
	}
	if rc.count() != n {
		t.Error("the receiver was reached")
	}
	// Redirects are not followed.
	redir := httptest.NewServer(http.RedirectHandler(rsrv.URL, http.StatusFound))
	t.Cleanup(redir.Close)
	sub.URL = redir.URL
	res, err = h.svc.sendTest(context.Background(), sub)
	if err != nil || res.Status != http.StatusFound || rc.count() != n {
		t.Errorf("redirect: %+v %v", res, err)
	}
}

func TestResealAfterKeyRotation(t *testing.T) {
	v1 := secretbox.NewKeySpec()
	k1, _ := secretbox.Parse(v1)
	k2, err := secretbox.Parse("v2:" + strings.TrimPrefix(secretbox.NewKeySpec(), "v1:") + "," + v1)
	if err != nil {
		t.Fatal(err)
	}
	a := subscription.Auth{Secrets: []subscription.Secret{{ID: "s1", Sealed: k1.Seal("whsec_AAAA")}}, TokenSealed: k1.Seal("tok")}
	(&Service{keys: k2}).reseal(&a)
	for _, v := range []string{a.Secrets[0].Sealed, a.TokenSealed} {
		if !strings.HasPrefix(v, "v2:") {
			t.Errorf("not resealed under v2: %.3s", v)
		}
	}
	if p, _ := k2.Open(a.Secrets[0].Sealed); p != "whsec_AAAA" {
		t.Error("reseal changed the secret")
	}
}

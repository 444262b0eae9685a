package registry

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// handshakeReceiver answers the abuse-protection OPTIONS as told and
// records what it was sent.
type handshakeReceiver struct {
	mu      sync.Mutex
	got     []http.Header
	status  int
	origin  string // WebHook-Allowed-Origin to answer; "" for none
	rate    string // WebHook-Allowed-Rate to answer; "" for none
	options int
}

func (hr *handshakeReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	if r.Method != http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	hr.options++
	hr.got = append(hr.got, r.Header.Clone())
	if hr.origin != "" {
		w.Header().Set("WebHook-Allowed-Origin", hr.origin)
	}
	if hr.rate != "" {
		w.Header().Set("WebHook-Allowed-Rate", hr.rate)
	}
	w.WriteHeader(hr.status)
}

func (hr *handshakeReceiver) calls() (int, http.Header) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	if len(hr.got) == 0 {
		return hr.options, nil
	}
	return hr.options, hr.got[len(hr.got)-1]
}

func TestAbuseProtectionHandshake(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.HandshakeOrigin = "herald.example.com" })
	h.tenant("acme", "account", "")
	serve := func(hr *handshakeReceiver) string {
		srv := httptest.NewServer(hr)
		t.Cleanup(srv.Close)
		return srv.URL + "/hook"
	}
	create := func(url string, extra map[string]any) answer {
		body := map[string]any{"url": url, "events": []string{"alert.*"}, "handshake": true}
		for k, v := range extra {
			body[k] = v
		}
		return h.call(adminToken, "POST", "/v1/tenants/acme/subscriptions", body)
	}

	// A receiver that grants delivery: created; it saw the origin, the rate
	// and the subscription's auth.
	ok := &handshakeReceiver{status: http.StatusOK, origin: "herald.example.com", rate: "120"}
	a := create(serve(ok), map[string]any{"rate_limit": 2, "auth": map[string]any{"type": "bearer", "token": "rcv-token"}})
	if a.status != http.StatusCreated || a.body["handshake"] != true {
		t.Fatalf("granted handshake: %d %s", a.status, a.raw)
	}
	n, hdr := ok.calls()
	if n != 1 || hdr.Get("WebHook-Request-Origin") != "herald.example.com" || hdr.Get("WebHook-Request-Rate") != "120" ||
		hdr.Get("Authorization") != "Bearer rcv-token" {
		t.Errorf("validation request: %d calls, headers %v", n, hdr)
	}
	id := a.body["id"].(string)

	// "*" grants any origin and any rate.
	star := &handshakeReceiver{status: http.StatusOK, origin: "*", rate: "*"}
	if a := create(serve(star), map[string]any{"rate_limit": 100}); a.status != http.StatusCreated {
		t.Errorf("wildcard grant: %d %s", a.status, a.raw)
	}

	for _, c := range []struct {
		name   string
		hr     *handshakeReceiver
		extra  map[string]any
		detail string
	}{
		{"no OPTIONS support", &handshakeReceiver{status: http.StatusMethodNotAllowed}, nil,
			"the endpoint refused the CloudEvents abuse-protection handshake: OPTIONS answered 405 Method Not Allowed"},
		{"no allowed origin", &handshakeReceiver{status: http.StatusOK}, nil, "without WebHook-Allowed-Origin"},
		{"another origin", &handshakeReceiver{status: http.StatusOK, origin: "eventgrid.azure.net"}, nil,
			`the endpoint granted delivery to origin "eventgrid.azure.net", not to herald.example.com`},
		{"a lower rate", &handshakeReceiver{status: http.StatusOK, origin: "*", rate: "30"}, map[string]any{"rate_limit": 1},
			"the endpoint allows 30 requests per minute, fewer than rate_limit 1/s (60 per minute): set rate_limit to at most 0.5"},
		{"no allowed rate", &handshakeReceiver{status: http.StatusOK, origin: "*"}, map[string]any{"rate_limit": 1}, "answered no WebHook-Allowed-Rate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := create(serve(c.hr), c.extra)
			if a.status != http.StatusBadRequest || !strings.Contains(pointers(a)["/handshake"], c.detail) {
				t.Errorf("%d %s, want /handshake %q", a.status, a.raw, c.detail)
			}
		})
	}

	// An invalid subscription is refused before any request goes out.
	silent := &handshakeReceiver{status: http.StatusOK, origin: "*"}
	if a := h.call(adminToken, "POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": serve(silent), "events": []string{"alert.opend"}, "handshake": true}); a.status != http.StatusBadRequest {
		t.Errorf("invalid subscription: %d", a.status)
	}
	// Without the option, no handshake.
	if a := h.call(adminToken, "POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": serve(silent), "events": []string{"alert.*"}}); a.status != http.StatusCreated {
		t.Errorf("without handshake: %d %s", a.status, a.raw)
	}
	if n, _ := silent.calls(); n != 0 {
		t.Errorf("%d handshakes sent without the option or for an invalid subscription", n)
	}

	// PATCH: a description alone sends nothing; a new URL is validated.
	h.admin("PATCH", "/v1/tenants/acme/subscriptions/"+id, map[string]any{"description": "pager"}, http.StatusOK)
	if n, _ := ok.calls(); n != 1 {
		t.Errorf("a PATCH of the description sent a handshake (%d calls)", n)
	}
	a = h.admin("PATCH", "/v1/tenants/acme/subscriptions/"+id, map[string]any{"url": serve(&handshakeReceiver{status: http.StatusNotFound})}, http.StatusBadRequest)
	if !strings.Contains(pointers(a)["/handshake"], "OPTIONS answered 404") {
		t.Errorf("PATCH to a refusing URL: %s", a.raw)
	}
}

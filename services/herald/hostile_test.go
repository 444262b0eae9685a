package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A corpus of bad requests against the public ingest API: each gets the
// documented status with problem JSON, and Herald stays healthy.
func TestHostileInput(t *testing.T) {
	h := startHerald(t)
	call(t, h, "POST", "/v1/tenants", "application/json", map[string]any{"id": "acme", "name": "Acme", "kind": "account"}, http.StatusCreated)
	const ce = "application/cloudevents+json"
	cases := []struct {
		name, contentType, body string
		header                  map[string]string
		want                    int
	}{
		{"truncated JSON", ce, `{"specversion":"1.0","id":"1","source":"s",`, nil, 400},
		{"not JSON", ce, `<xml/>`, nil, 400},
		{"wrong content type", "text/plain", `hello`, nil, 415},
		{"deeply nested data", ce, `{"specversion":"1.0","id":"1","source":"s","type":"x.y","data":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`, nil, 400},
		{"invalid UTF-8", ce, "{\"specversion\":\"1.0\",\"id\":\"\xff\xfe\",\"source\":\"s\",\"type\":\"x.y\"}", nil, 400},
		{"empty batch", "application/cloudevents-batch+json", `[]`, nil, 400},
		{"batch of garbage", "application/cloudevents-batch+json", `[1,2,3]`, nil, 400},
		{"bad binary header", "application/json", `{}`, map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "x.y", "ce-time": "%zz"}, 400},
		{"type not a token", ce, `{"specversion":"1.0","id":"1","source":"s","type":"X Y>"}`, nil, 400},
		{"oversized", ce, `{"specversion":"1.0","id":"1","source":"s","type":"x.y","data":"` + strings.Repeat("a", 2<<20) + `"}`, nil, 413},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("POST", h.HTTPURL+"/v1/tenants/acme/events", strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+h.AdminToken)
		req.Header.Set("Content-Type", c.contentType)
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.want, b)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			t.Errorf("%s: content type %q, want problem JSON", c.name, ct)
		}
	}

	// A huge header is refused by the server before any handler runs.
	req, _ := http.NewRequest("POST", h.HTTPURL+"/v1/tenants/acme/events", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+h.AdminToken)
	req.Header.Set("X-Huge", strings.Repeat("a", 1<<20))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("huge header: status %d", resp.StatusCode)
		}
	}

	// A slowloris client that never finishes its headers is cut off by
	// ReadHeaderTimeout rather than holding a connection forever.
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.HTTPURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/tenants/acme/events HTTP/1.1\r\nHost: x\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("slow client: the server did not close the connection: %v", err)
	}
	if waited := time.Since(start); waited > 25*time.Second {
		t.Errorf("slow client held a connection for %s", waited)
	}

	// And Herald still works.
	call(t, h, "POST", "/v1/tenants/acme/events", ce, `{"specversion":"1.0","id":"ok-1","source":"s","type":"x.y"}`, http.StatusAccepted)
	resp, err := http.Get(h.HTTPURL + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("not ready after the corpus: %v %v", resp, err)
	}
	resp.Body.Close()
}

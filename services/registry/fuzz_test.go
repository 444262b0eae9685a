package registry

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzAPIBodies sends arbitrary bytes as the JSON body of every write of
// the registry's API, through its real HTTP handler and a real JetStream.
// Whatever the body, the answer is a success or a 4xx RFC 9457 problem
// whose status matches the response's: never a 5xx, a panic or a
// malformed error.
func FuzzAPIBodies(f *testing.F) {
	for _, s := range []string{
		`{"url":"http://127.0.0.1:9/hook","events":["alert.*"]}`,
		`{"url":"http://127.0.0.1:9/hook","events":["alert.*"],"filter":"data.severity == 'critical'","headers":{"X-Team":"noc"}}`,
		`{"id":"t1","name":"T","kind":"account"}`,
		`{"status":"paused"}`,
		`{"url":"http://127.0.0.1:9/hook","events":[` + strings.Repeat(`"a",`, 300) + `"a"]}`,
		strings.Repeat("[", 10000),
		`{"url":"\u0000","events":null}`,
		"{\"url\":\"http://127.0.0.1:9/\xff\"}",
		`{"url":"http://127.0.0.1:9/hook","events":["alert.*"],"filter":"` + strings.Repeat("(", 500) + `"}`,
		``, `null`, `{}`, `[]`, `"x"`, `{"url":1e999}`,
	} {
		for which := range uint8(4) {
			f.Add([]byte(s), which)
		}
	}
	h := newHarness(f, nil)
	h.tenant("acme", "account", "")
	created := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"alert.*"}}, http.StatusCreated)
	subID, _ := created.body["id"].(string)
	writes := []struct{ method, path string }{
		{"POST", "/v1/tenants/acme/subscriptions"},
		{"PATCH", "/v1/tenants/acme/subscriptions/" + subID},
		{"POST", "/v1/tenants"},
		{"PATCH", "/v1/tenants/acme"},
	}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		w := writes[int(which)%len(writes)]
		a, err := callWithin(h.srv.URL+w.path, w.method, body, 10*time.Second)
		if err != nil {
			t.Fatalf("%s %s %q: %v", w.method, w.path, body, err)
		}
		if a.status >= 500 {
			t.Fatalf("%s %s %q = %d %s", w.method, w.path, body, a.status, a.raw)
		}
		if a.status < 400 {
			return
		}
		if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%s %s %q = %d with Content-Type %q, want application/problem+json", w.method, w.path, body, a.status, ct)
		}
		var p struct {
			Status int    `json:"status"`
			Title  string `json:"title"`
		}
		if err := json.Unmarshal([]byte(a.raw), &p); err != nil || p.Status != a.status || p.Title == "" {
			t.Fatalf("%s %s %q = %d, problem %s does not state it", w.method, w.path, body, a.status, a.raw)
		}
	})
}

// callWithin is harness.call bounded in time: an answer that never comes
// is a failure of the input, not a hung fuzzer.
func callWithin(url, method string, body []byte, within time.Duration) (answer, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: within}).Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, raw: string(raw), header: resp.Header}, err
}

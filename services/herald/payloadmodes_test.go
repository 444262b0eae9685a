package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// Events without data, with empty data, with data that is not JSON and with
// null data reach the receiver in every payload mode, signed, and the
// process stays up. An event without data once crashed the dispatcher in
// binary mode (the request had no body) and, redelivered, crash-looped it.
func TestEveryPayloadModeCarriesEveryKindOfData(t *testing.T) {
	h := startHerald(t)
	type hit struct {
		path   string
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	var hits []hit
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, hit{r.URL.Path, r.Header.Clone(), b})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)

	call(t, h, "POST", "/v1/tenants", "application/json", map[string]any{"id": "acme", "name": "Acme", "kind": "account"}, http.StatusCreated)
	secrets := map[string]string{}
	for _, mode := range []string{"structured", "binary", "template"} {
		body := map[string]any{"url": rcv.URL + "/" + mode, "events": []string{"server.*"}, "payload_mode": mode}
		if mode == "template" {
			body["template"] = `{"event":"{{.causationid}}","has_data":{{if .data}}true{{else}}false{{end}}}`
		}
		sub := call(t, h, "POST", "/v1/tenants/acme/subscriptions", "application/json", body, http.StatusCreated)
		secrets[mode], _ = sub["secret"].(string)
	}

	post := func(contentType string, header map[string]string, body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", h.HTTPURL+"/v1/tenants/acme/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+h.AdminToken)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post %s: %d %s", body, resp.StatusCode, b)
		}
	}
	binary := func(id string) map[string]string {
		return map[string]string{"ce-specversion": "1.0", "ce-id": id, "ce-source": "urn:x", "ce-type": "server.rebooted"}
	}
	// No data at all (the reported crash).
	post("application/cloudevents+json", nil, `{"specversion":"1.0","id":"nodata-1","source":"urn:x","type":"server.rebooted"}`)
	// null data.
	post("application/cloudevents+json", nil, `{"specversion":"1.0","id":"null-1","source":"urn:x","type":"server.rebooted","data":null}`)
	// Empty data: a binary-mode event with an empty body.
	post("text/plain", binary("empty-1"), "")
	// Data that is not JSON.
	post("text/plain", binary("text-1"), "rebooted by operator, not JSON")

	ids := []string{"nodata-1", "null-1", "empty-1", "text-1"}
	natstest.Eventually(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(hits) < len(ids)*3 {
			return fmt.Errorf("receiver got %d POSTs, want %d", len(hits), len(ids)*3)
		}
		return nil
	})
	mu.Lock()
	got := append([]hit(nil), hits...)
	mu.Unlock()
	seen := map[string]bool{}
	for _, r := range got {
		mode := strings.TrimPrefix(r.path, "/")
		v, err := webhook.NewVerifier([]string{secrets[mode]}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(r.header, r.body); err != nil {
			t.Errorf("%s: signature: %v", mode, err)
		}
		var id string
		switch mode {
		case "structured":
			var ce map[string]any
			if err := json.Unmarshal(r.body, &ce); err != nil {
				t.Errorf("structured body is not JSON: %s", r.body)
			}
			id, _ = ce["causationid"].(string) // the source event's id
		case "binary":
			id = r.header.Get("Ce-Causationid")
			if id == "text-1" && !bytes.Equal(r.body, []byte("rebooted by operator, not JSON")) {
				t.Errorf("binary body of text-1 = %q", r.body)
			}
			if (id == "nodata-1" || id == "empty-1") && len(r.body) != 0 {
				t.Errorf("binary body of %s = %q, want empty", id, r.body)
			}
		case "template":
			var v struct {
				ID string `json:"event"`
			}
			if err := json.Unmarshal(r.body, &v); err != nil {
				t.Errorf("template body is not JSON: %s", r.body)
			}
			id = v.ID
		}
		seen[mode+"/"+id] = true
	}
	for _, mode := range []string{"structured", "binary", "template"} {
		for _, id := range ids {
			if !seen[mode+"/"+id] {
				t.Errorf("%s mode: %s not delivered", mode, id)
			}
		}
	}
	resp, err := http.Get(h.HTTPURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("readyz %d after the deliveries", resp.StatusCode)
	}
}

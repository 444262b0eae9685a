package collector

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// FuzzDecodeBinary: no header value makes the binary-mode decoder panic,
// and every UTF-8 value percent-encoded by a sender decodes to itself.
func FuzzDecodeBinary(f *testing.F) {
	f.Add("evt-1", "urn:fleet:rtr", "router.booted", "café %", "eu-west", "2024-05-02T10:07:00Z", []byte(`{"a":1}`))
	f.Add("%zz", "s", "x.y", "%", "%C3", "yesterday", []byte{})
	f.Fuzz(func(t *testing.T, id, source, typ, subject, ext, tm string, body []byte) {
		raw := http.Header{}
		for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": id, "Ce-Source": source, "Ce-Type": typ, "Ce-Subject": subject, "Ce-Region": ext, "Ce-Time": tm} {
			raw[k] = []string{v}
		}
		_, _ = decodeBinary(raw, body) // must not panic

		if !utf8.ValidString(id) || !utf8.ValidString(subject) || !utf8.ValidString(ext) {
			return
		}
		enc := http.Header{}
		for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": id, "Ce-Subject": subject, "Ce-Region": ext} {
			enc[k] = []string{url.PathEscape(v)}
		}
		e, err := decodeBinary(enc, body)
		if err != nil {
			t.Fatalf("percent-encoded UTF-8 rejected: %v", err)
		}
		// sdk-go trims surrounding white space of string attributes.
		if e.ID() != strings.TrimSpace(id) || e.Subject() != strings.TrimSpace(subject) {
			t.Fatalf("round trip: id %q subject %q, want %q %q", e.ID(), e.Subject(), id, subject)
		}
		if ext != "" && e.Extensions()["region"] != ext {
			t.Fatalf("extension %q, want %q", e.Extensions()["region"], ext)
		}
	})
}

// fuzzAdapter: a parser never panics; what it accepts has an id, a type and
// a deterministic mapping, and is a valid CloudEvent.
func fuzzAdapter(f *testing.F, name string, samples ...string) {
	for _, s := range samples {
		f.Add([]byte(s), "")
	}
	parse := adapters[name]
	f.Fuzz(func(t *testing.T, body []byte, query string) {
		q, _ := url.ParseQuery(query)
		e, fe := adapt("acme", name, parse, body, q)
		if fe != nil {
			if fe.Detail == "" {
				t.Fatal("rejection without detail")
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("invalid event: %v", err)
		}
		again, _ := adapt("acme", name, parse, body, q)
		if again.ID() != e.ID() || again.Type() != e.Type() {
			t.Fatal("mapping not deterministic")
		}
	})
}

func FuzzVManage(f *testing.F) { fuzzAdapter(f, "vmanage", `{"uuid":"u","active":false}`) }
func FuzzLMC(f *testing.F)     { fuzzAdapter(f, "lmc", `{"alertId":"a","state":"open"}`) }
func FuzzCLCAccount(f *testing.F) {
	fuzzAdapter(f, "clc-account", `{"accountAlias":"DEMO"}`)
}
func FuzzCLCUser(f *testing.F)   { fuzzAdapter(f, "clc-user", `{"userName":"u","accountAlias":"DEMO"}`) }
func FuzzCLCServer(f *testing.F) { fuzzAdapter(f, "clc-server", `{"accountAlias":"DEMO","name":"S"}`) }
func FuzzCLCAlert(f *testing.F)  { fuzzAdapter(f, "clc-alert", `{"serverName":"S","triggers":[]}`) }
func FuzzDeviceOperation(f *testing.F) {
	fuzzAdapter(f, "device-operation", `{"protocol":"p","operation":"reboot"}`)
}

// FuzzEventsBody sends arbitrary bytes to the events endpoint, through its
// real HTTP handler and a real JetStream, in each content mode. Whatever
// the body, the answer is a 202 that accounts for every event it judged, or
// a 4xx RFC 9457 problem whose status matches the response's: never a 5xx
// or a panic.
func FuzzEventsBody(f *testing.F) {
	for _, s := range []string{
		`{"specversion":"1.0","id":"e1","source":"urn:s","type":"router.booted","data":{"a":1}}`,
		`[{"specversion":"1.0","id":"e2","source":"urn:s","type":"router.booted"},{"specversion":"1.0","id":"e3"}]`,
		`{"specversion":"1.0","id":"e4","source":"urn:s","type":"lmc.alert","data":{"alertId":"a","state":"open"}}`,
		`{"specversion":"0.3","id":"e5","source":"urn:s","type":"x"}`,
		`{"specversion":"1.0","id":"e6","source":"urn:s","type":"x","data_base64":"!!"}`,
		strings.Repeat(`{"a":`, 5000), `[` + strings.Repeat(`{},`, 600) + `{}]`,
		"{\"specversion\":\"1.0\",\"id\":\"\xff\"}", ``, `null`, `[]`, `[null]`, `{}`, `1e999`,
	} {
		for mode := range uint8(3) {
			f.Add([]byte(s), mode)
		}
	}
	h := start(f, natstest.Run(f), testConfig())
	contentTypes := []string{"application/cloudevents+json", "application/cloudevents-batch+json", "application/json"}
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		ct := contentTypes[int(mode)%len(contentTypes)]
		status, header, raw := h.post(t, "/v1/tenants/acme/events", ct, string(body))
		switch {
		case status == http.StatusAccepted:
			var r response
			if err := json.Unmarshal(raw, &r); err != nil || r.Accepted+r.Duplicates+r.Rejected != len(r.Results) || len(r.Results) == 0 {
				t.Fatalf("%s %q = 202 %s: does not account for its events", ct, body, raw)
			}
		case status >= 400 && status < 500:
			var p struct {
				Status int    `json:"status"`
				Title  string `json:"title"`
			}
			if header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(raw, &p) != nil || p.Status != status || p.Title == "" {
				t.Fatalf("%s %q = %d %s: not an RFC 9457 problem stating its status", ct, body, status, raw)
			}
		default:
			t.Fatalf("%s %q = %d %s", ct, body, status, raw)
		}
	})
}

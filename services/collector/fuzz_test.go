package collector

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
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

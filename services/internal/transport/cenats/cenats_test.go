package cenats

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
)

func sampleEvent(t *testing.T) event.Event {
	t.Helper()
	e := event.New()
	e.SetID("evt-1")
	e.SetSource("urn:vmanage:dc1")
	e.SetType("vmanage.alarm")
	e.SetSubject("Système « redémarré » ✓")
	e.SetTime(time.Date(2026, 11, 22, 10, 7, 0, 123456789, time.UTC))
	e.SetExtension("tenant", "acme")
	e.SetExtension("action", "created 100%")
	e.SetExtension("sequence", 7)
	if err := e.SetData("application/json", map[string]any{"host": "DC1-VEDGE1", "ok": true}); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRoundTrip(t *testing.T) {
	for _, mode := range []Mode{Binary, Structured} {
		in := sampleEvent(t)
		msg, err := Encode(context.Background(), "events.acme.vmanage.alarm", in, mode)
		if err != nil {
			t.Fatalf("mode %d: encode: %v", mode, err)
		}
		if mode == Binary {
			if got := msg.Header.Get("ce-id"); got != "evt-1" {
				t.Errorf("ce-id = %q", got)
			}
			if got := msg.Header.Get("content-type"); got != "application/json" {
				t.Errorf("content-type = %q", got)
			}
			for k, vs := range msg.Header {
				for _, v := range vs {
					for i := 0; i < len(v); i++ {
						if v[i] <= 0x20 || v[i] >= 0x7f {
							t.Errorf("header %s not percent-encoded: %q", k, v)
						}
					}
				}
			}
		} else if got := msg.Header.Get("content-type"); got != ContentTypeStructured {
			t.Errorf("structured content-type = %q", got)
		}
		out, err := Decode(msg.Header, msg.Data)
		if err != nil {
			t.Fatalf("mode %d: decode: %v", mode, err)
		}
		if out.Subject() != in.Subject() || out.ID() != in.ID() || out.Type() != in.Type() || out.Source() != in.Source() {
			t.Errorf("mode %d: attributes differ: %+v vs %+v", mode, out.Context, in.Context)
		}
		if !out.Time().Equal(in.Time()) {
			t.Errorf("mode %d: time %v, want %v", mode, out.Time(), in.Time())
		}
		if got := out.Extensions()["action"]; got != "created 100%" {
			t.Errorf("mode %d: action = %v", mode, got)
		}
		if got := out.Extensions()["tenant"]; got != "acme" {
			t.Errorf("mode %d: tenant = %v", mode, got)
		}
		if string(out.Data()) != string(in.Data()) {
			t.Errorf("mode %d: data %s, want %s", mode, out.Data(), in.Data())
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good := func() nats.Header {
		return nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"1"}, "ce-source": {"s"}, "ce-type": {"t"}}
	}
	cases := []struct {
		name   string
		header nats.Header
		want   error
	}{
		{"no cloudevent", nats.Header{"foo": {"bar"}}, ErrNotCloudEvent},
		{"truncated escape", func() nats.Header { h := good(); h["ce-subject"] = []string{"abc%4"}; return h }(), ErrMalformedHeader},
		{"bad hex", func() nats.Header { h := good(); h["ce-subject"] = []string{"%zz"}; return h }(), ErrMalformedHeader},
		{"invalid utf8", func() nats.Header { h := good(); h["ce-subject"] = []string{"%C3%28"}; return h }(), ErrMalformedHeader},
		{"bad time", func() nats.Header { h := good(); h["ce-time"] = []string{"yesterday"}; return h }(), ErrMalformedHeader},
		{"unknown version", func() nats.Header { h := good(); h["ce-specversion"] = []string{"9.9"}; return h }(), ErrMalformedHeader},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.header, nil)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// Missing required attribute is a validation error, not a header one.
	h := good()
	delete(h, "ce-source")
	if _, err := Decode(h, nil); err == nil {
		t.Fatal("missing source accepted")
	}
}

func TestPercentEncoding(t *testing.T) {
	for _, s := range []string{"plain", "a b", `q"uote`, "100%", "ü€𝄞", "\x00\x7f"} {
		enc := percentEncode(s)
		dec, err := percentDecode(enc)
		if err != nil || dec != s && !(s == "\x00\x7f") {
			t.Errorf("%q -> %q -> %q, %v", s, enc, dec, err)
		}
	}
	if got := percentEncode("a b"); got != "a%20b" {
		t.Errorf("space: %q", got)
	}
}

func FuzzDecodeBinaryHeader(f *testing.F) {
	for _, s := range []string{"plain", "a%20b", "%", "%4", "%zz", "%C3%A9", "%C3%28", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		h := nats.Header{"ce-specversion": {"1.0"}, "ce-id": {"1"}, "ce-source": {"s"}, "ce-type": {"t"}, "ce-subject": {v}}
		e, err := Decode(h, nil)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same subject.
		msg, err := Encode(context.Background(), "x", e, Binary)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		e2, err := Decode(msg.Header, msg.Data)
		if err != nil || e2.Subject() != e.Subject() {
			t.Fatalf("round trip of %q: %q, %v", v, e2.Subject(), err)
		}
	})
}

// A binary-mode event whose data is declared application/cloudevents+json
// is still a binary-mode event: its ce- headers decide, and its data is
// kept as it is even when it is not valid JSON (found by
// FuzzPlanAndDeliver: such a notification was terminated unread).
func TestBinaryWithCloudEventsContentType(t *testing.T) {
	e := event.New()
	e.SetID("x")
	e.SetSource("urn:s")
	e.SetType("fuzz.happened")
	e.DataEncoded = []byte(`{"nested":`)
	e.SetDataContentType("application/cloudevents+json")
	m, err := Encode(context.Background(), "notifications.acme.fuzz", e, Binary)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(m.Header, m.Data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got.ID() != "x" || string(got.Data()) != `{"nested":` || got.DataContentType() != "application/cloudevents+json" {
		t.Errorf("decoded %v with data %q", got, got.Data())
	}
}

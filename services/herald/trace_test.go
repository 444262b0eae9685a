package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// One trace follows an event from the collector's HTTP span through every
// stream hop to the webhook's HTTP client span and the audit record. Each
// consumer span is the child of the send span whose traceparent the NATS
// message carried.
func TestOneTraceFollowsAnEvent(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	h := startHerald(t)
	rcv := newReceiver(t)
	call(t, h, "POST", "/v1/tenants", "application/json", map[string]any{"id": "trace", "name": "Trace", "kind": "account"}, http.StatusCreated)
	call(t, h, "POST", "/v1/tenants/trace/subscriptions", "application/json",
		map[string]any{"url": rcv.srv.URL + "/hook", "events": []string{"device.rebooted"}}, http.StatusCreated)
	call(t, h, "POST", "/v1/tenants/trace/events", "application/cloudevents+json",
		`{"specversion":"1.0","id":"trace-1","source":"urn:test","type":"device.rebooted","data":{"id":"RTR-1"}}`, http.StatusAccepted)

	want := []string{
		"POST /v1/tenants/{tenant}/events",
		"send events", "process events",
		"send notifications", "process notifications",
		"send deliveries", "process deliveries",
		"send attempts", "process attempts",
	}
	var spans []sdktrace.ReadOnlySpan
	natstest.Eventually(t, 30*time.Second, func() error {
		spans = spansOfTrace(rec.Ended(), "POST /v1/tenants/{tenant}/events")
		names := map[string]bool{}
		for _, s := range spans {
			names[s.Name()] = true
		}
		var missing []string
		for _, w := range want {
			if !names[w] {
				missing = append(missing, w)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("trace lacks spans %v (has %v)", missing, keys(names))
		}
		return nil
	})
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	var client bool
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindClient {
			client = true
		}
		if strings.HasPrefix(s.Name(), "process ") {
			parent, ok := byID[s.Parent().SpanID()]
			if !ok || parent.Name() != "send "+strings.TrimPrefix(s.Name(), "process ") {
				t.Errorf("span %q has parent %q, want the matching send span", s.Name(), nameOf(parent, ok))
			}
			attrs := map[string]string{}
			for _, a := range s.Attributes() {
				attrs[string(a.Key)] = a.Value.Emit()
			}
			if attrs["messaging.system"] != "nats" || attrs["messaging.consumer.group.name"] == "" || attrs["messaging.destination.name"] == "" {
				t.Errorf("span %q lacks messaging attributes: %v", s.Name(), attrs)
			}
		}
	}
	if !client {
		t.Errorf("trace has no HTTP client span for the webhook POST")
	}
}

// spansOfTrace returns every span of the trace whose root span is named root.
func spansOfTrace(all []sdktrace.ReadOnlySpan, root string) []sdktrace.ReadOnlySpan {
	var id trace.TraceID
	for _, s := range all {
		if s.Name() == root {
			id = s.SpanContext().TraceID()
		}
	}
	var out []sdktrace.ReadOnlySpan
	for _, s := range all {
		if id.IsValid() && s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func nameOf(s sdktrace.ReadOnlySpan, ok bool) string {
	if !ok {
		return "<none in trace>"
	}
	return s.Name()
}

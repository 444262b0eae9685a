package bus

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const tracerName = "github.com/heraldhq/herald/services/internal/transport/bus"

// HeaderCarrier adapts nats.Header to the OpenTelemetry propagators, so the
// W3C traceparent travels in NATS headers.
type HeaderCarrier nats.Header

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	if v := nats.Header(c)[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces key's values.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c)[key] = []string{value} }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

var _ propagation.TextMapCarrier = HeaderCarrier{}

// Extract returns ctx carrying the remote span context found in h.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier(h))
}

// Inject writes ctx's span context into h.
func Inject(ctx context.Context, h nats.Header) {
	otel.GetTextMapPropagator().Inject(ctx, HeaderCarrier(h))
}

// SetTraceExtension records the originating trace in the CloudEvents
// distributed-tracing extension (traceparent/tracestate), unless the event
// already carries one from an earlier hop.
func SetTraceExtension(ctx context.Context, e *event.Event) {
	if _, ok := e.Extensions()["traceparent"]; ok {
		return
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	if tp := carrier.Get("traceparent"); tp != "" {
		e.SetExtension("traceparent", tp)
		if ts := carrier.Get("tracestate"); ts != "" {
			e.SetExtension("tracestate", ts)
		}
	}
}

// Messaging semantic-convention attribute keys.
var (
	attrSystem      = attribute.String("messaging.system", "nats")
	keyDestination  = attribute.Key("messaging.destination.name")
	keyOperation    = attribute.Key("messaging.operation.type")
	keyMessageID    = attribute.Key("messaging.message.id")
	keyConsumer     = attribute.Key("messaging.consumer.group.name")
	keyStream       = attribute.Key("messaging.nats.stream")
	keyDeliveries   = attribute.Key("messaging.nats.num_delivered")
	keyCloudEventID = attribute.Key("cloudevents.event_id")
)

func tracer() trace.Tracer { return otel.Tracer(tracerName) }

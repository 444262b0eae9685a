package telemetry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// A publish and its consumption form one trace: the consumer span is the
// child of the producer span through the traceparent NATS header, across a
// real server. Not parallel: it installs the global tracer provider.
func TestPublishConsumeTrace(t *testing.T) {
	shutdown, err := Setup(context.Background(), "trace-test", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	if !contains(otel.GetTextMapPropagator().Fields(), "traceparent") {
		t.Fatalf("propagator fields %v lack traceparent", otel.GetTextMapPropagator().Fields())
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	s := natstest.Run(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx, s.JS, contract.EventsStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	cons, err := bus.EnsureConsumer(ctx, s.JS, contract.StreamEvents, contract.EngineConsumer())
	if err != nil {
		t.Fatal(err)
	}

	e := event.New()
	e.SetID("ev-1")
	e.SetSource("test")
	e.SetType("vmanage.alarm")
	e.SetExtension("tenant", "acme")
	_ = e.SetData(event.ApplicationJSON, map[string]string{"k": "v"})

	rootCtx, root := tp.Tracer("test").Start(ctx, "ingest", trace.WithSpanKind(trace.SpanKindServer))
	if _, err := bus.PublishEvent(rootCtx, s.JS, contract.EventSubject("acme", "vmanage.alarm"), "msg-1", e); err != nil {
		t.Fatal(err)
	}
	root.End()

	type seen struct {
		sc          trace.SpanContext
		traceparent string
	}
	got := make(chan seen, 1)
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(cctx, cons, func(ctx context.Context, msg jetstream.Msg) error {
			ev, err := cenats.Decode(msg.Headers(), msg.Data())
			if err != nil {
				return bus.Permanent(err)
			}
			tpExt, _ := ev.Extensions()["traceparent"].(string)
			select {
			case got <- seen{trace.SpanContextFromContext(ctx), tpExt}:
			default:
			}
			return nil
		}, bus.ConsumeOptions{Consumer: contract.ConsumerEngine})
	}()
	var g seen
	select {
	case g = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no message consumed after 20s")
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Consume: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Consume did not return after cancel")
	}

	var producer, consumer sdktrace.ReadOnlySpan
	natstest.Eventually(t, 10*time.Second, func() error {
		producer, consumer = nil, nil
		for _, sp := range rec.Ended() {
			switch sp.SpanKind() {
			case trace.SpanKindProducer:
				producer = sp
			case trace.SpanKindConsumer:
				consumer = sp
			}
		}
		if producer == nil || consumer == nil {
			return errors.New("producer or consumer span not ended yet")
		}
		return nil
	})
	if producer.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Errorf("producer parent = %s, want the ingest span %s", producer.Parent().SpanID(), root.SpanContext().SpanID())
	}
	if consumer.Parent().SpanID() != producer.SpanContext().SpanID() || !consumer.Parent().IsRemote() {
		t.Errorf("consumer parent = %v (remote %v), want the producer span %s via the header",
			consumer.Parent().SpanID(), consumer.Parent().IsRemote(), producer.SpanContext().SpanID())
	}
	if consumer.SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Errorf("consumer trace %s, want %s", consumer.SpanContext().TraceID(), root.SpanContext().TraceID())
	}
	if g.sc.SpanID() != consumer.SpanContext().SpanID() {
		t.Errorf("handler ctx span %s, want the consumer span %s", g.sc.SpanID(), consumer.SpanContext().SpanID())
	}
	if want := "00-" + root.SpanContext().TraceID().String() + "-" + producer.SpanContext().SpanID().String() + "-01"; g.traceparent != want {
		t.Errorf("CloudEvent traceparent extension = %q, want the producer span in trace %s", g.traceparent, root.SpanContext().TraceID())
	}
	wantAttrs := map[attribute.Key]string{
		"messaging.system":           "nats",
		"messaging.destination.name": "events.acme.vmanage.alarm",
		"messaging.operation.type":   "send",
	}
	checkAttrs(t, "producer", producer.Attributes(), wantAttrs)
	wantAttrs["messaging.operation.type"] = "process"
	wantAttrs["messaging.consumer.group.name"] = contract.ConsumerEngine
	checkAttrs(t, "consumer", consumer.Attributes(), wantAttrs)
}

func checkAttrs(t *testing.T, span string, attrs []attribute.KeyValue, want map[attribute.Key]string) {
	t.Helper()
	have := map[attribute.Key]string{}
	for _, a := range attrs {
		have[a.Key] = a.Value.Emit()
	}
	for k, v := range want {
		if have[k] != v {
			t.Errorf("%s span %s = %q, want %q", span, k, have[k], v)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// Without any OTel configuration a bus message still carries a W3C
// traceparent, started where the message is published, and its consumer
// continues that trace: a collector added later sees whole traces. Not
// parallel: Setup installs globals.
func TestTraceparentWithoutOTel(t *testing.T) {
	shutdown, err := Setup(context.Background(), "no-otel-test", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })

	s := natstest.Run(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx, s.JS, contract.EventsStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	cons, err := bus.EnsureConsumer(ctx, s.JS, contract.StreamEvents, contract.EngineConsumer())
	if err != nil {
		t.Fatal(err)
	}
	e := event.New()
	e.SetID("ev-1")
	e.SetSource("test")
	e.SetType("vmanage.alarm")
	e.SetExtension("tenant", "acme")
	_ = e.SetData(event.ApplicationJSON, map[string]string{"k": "v"})
	ack, err := bus.PublishEvent(context.Background(), s.JS, contract.EventSubject("acme", "vmanage.alarm"), "msg-1", e)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.JS.Stream(ctx, contract.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	tp := m.Header.Get("traceparent")
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || strings.Trim(parts[1], "0") == "" || parts[3] != "01" {
		t.Fatalf("bus message traceparent = %q, want a sampled W3C trace context", tp)
	}

	got := make(chan trace.SpanContext, 1)
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(cctx, cons, func(ctx context.Context, msg jetstream.Msg) error {
			select {
			case got <- trace.SpanContextFromContext(ctx):
			default:
			}
			return nil
		}, bus.ConsumeOptions{Consumer: contract.ConsumerEngine})
	}()
	var sc trace.SpanContext
	select {
	case sc = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("no message consumed after 20s")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if sc.TraceID().String() != parts[1] {
		t.Errorf("consumer trace %s, want the publisher's %s", sc.TraceID(), parts[1])
	}
}

// Package telemetry sets up OpenTelemetry for a Herald process: traces
// exported with OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set, the W3C
// TraceContext propagator that package bus uses for NATS headers, and metrics
// served on a Prometheus /metrics endpoint and,
// with an endpoint, pushed with OTLP too. The instruments live in metrics.go.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Env names read here.
const (
	EnvEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT" // base URL, e.g. http://jaeger:4318
	EnvMetricsExporter = "OTEL_METRICS_EXPORTER"       // "otlp" (default with an endpoint), "prometheus" or "none": /metrics only
)

// Provider holds one process's telemetry pipeline.
type Provider struct {
	TracerProvider trace.TracerProvider
	MeterProvider  *sdkmetric.MeterProvider
	registry       *promclient.Registry
	shutdowns      []func(context.Context) error
}

// New builds the providers for serviceName without installing them
// globally; Setup installs them. Only getenv is consulted, so tests and the
// all-in-one binary control the configuration.
func New(ctx context.Context, serviceName string, getenv func(string) string) (*Provider, error) {
	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(attribute.String("service.name", serviceName)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	p := &Provider{registry: promclient.NewRegistry()}
	endpoint := strings.TrimRight(getenv(EnvEndpoint), "/")

	if endpoint == "" {
		// Spans get real ids and are dropped: trace context still starts
		// here and travels every hop, so a collector added later to any
		// process sees whole traces. Nothing to flush, so no shutdown.
		p.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithResource(res))
	} else {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint+"/v1/traces"))
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		p.TracerProvider = tp
		p.shutdowns = append(p.shutdowns, tp.Shutdown)
	}

	promExp, err := otelprom.New(otelprom.WithRegisterer(p.registry))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp),
		sdkmetric.WithView(latencyView)}
	switch me := getenv(EnvMetricsExporter); {
	case endpoint == "" || me == "none" || me == "prometheus":
	case me == "" || me == "otlp":
		mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(endpoint+"/v1/metrics"))
		if err != nil {
			return nil, fmt.Errorf("OTLP metric exporter: %w", err)
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp)))
	default:
		return nil, fmt.Errorf("%s=%q: want otlp, prometheus or none", EnvMetricsExporter, me)
	}
	p.MeterProvider = sdkmetric.NewMeterProvider(opts...)
	p.shutdowns = append(p.shutdowns, p.MeterProvider.Shutdown)
	return p, nil
}

// Meter is Herald's meter from this provider.
func (p *Provider) Meter() metric.Meter { return p.MeterProvider.Meter(meterName) }

// Handler serves this provider's metrics in the Prometheus text format.
func (p *Provider) Handler() http.Handler {
	return promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{})
}

// Shutdown flushes pending spans and metrics.
func (p *Provider) Shutdown(ctx context.Context) error {
	var errs []error
	for i := len(p.shutdowns) - 1; i >= 0; i-- {
		errs = append(errs, p.shutdowns[i](ctx))
	}
	return errors.Join(errs...)
}

// current is the provider installed by Setup, served by MetricsHandler.
var current atomic.Pointer[Provider]

// defaultTracerProvider is the global before anyone installed one: the
// OpenTelemetry no-op, which starts no trace of its own.
var defaultTracerProvider = otel.GetTracerProvider()

// Setup builds the providers and installs them as the OpenTelemetry globals,
// which package bus and otelhttp use. The TraceContext propagator and a tracer
// that starts traces are installed always, so every bus message carries a
// traceparent even in a process that exports nothing. Call shutdown on the
// way out to flush spans.
func Setup(ctx context.Context, serviceName string, getenv func(string) string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{}))
	p, err := New(ctx, serviceName, getenv)
	if err != nil {
		return nil, err
	}
	// Without an exporter, a provider already installed (an earlier
	// Setup's, or a recorder a test installed to follow a trace) stays.
	if getenv(EnvEndpoint) != "" || otel.GetTracerProvider() == defaultTracerProvider {
		otel.SetTracerProvider(p.TracerProvider)
	}
	otel.SetMeterProvider(p.MeterProvider)
	current.Store(p)
	return p.Shutdown, nil
}

// MetricsHandler serves /metrics for the provider installed by Setup; it
// answers 503 before Setup.
func MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := current.Load()
		if p == nil {
			http.Error(w, "telemetry not set up", http.StatusServiceUnavailable)
			return
		}
		p.Handler().ServeHTTP(w, r)
	})
}

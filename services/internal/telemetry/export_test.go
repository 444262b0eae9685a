package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// With OTEL_EXPORTER_OTLP_ENDPOINT set, spans and metrics are pushed with
// OTLP/HTTP to <endpoint>/v1/traces and /v1/metrics; OTEL_METRICS_EXPORTER
// =prometheus keeps metrics local (Jaeger accepts traces only).
func TestOTLPExport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		metricsExporter string
		wantMetrics     bool
	}{{"", true}, {"prometheus", false}} {
		var mu sync.Mutex
		paths := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			paths[r.URL.Path]++
			mu.Unlock()
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(http.StatusOK)
		}))
		env := map[string]string{EnvEndpoint: srv.URL + "/", EnvMetricsExporter: tc.metricsExporter}
		p, err := New(context.Background(), "export-test", func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		_, span := p.TracerProvider.Tracer("test").Start(context.Background(), "op")
		span.End()
		m, err := NewMetrics(p.Meter())
		if err != nil {
			t.Fatal(err)
		}
		m.Notified(context.Background(), "alert.opened")
		if err := p.Shutdown(context.Background()); err != nil { // flushes both
			t.Fatalf("shutdown: %v", err)
		}
		srv.Close()
		if paths["/v1/traces"] == 0 {
			t.Errorf("metrics exporter %q: no OTLP trace export (saw %v)", tc.metricsExporter, paths)
		}
		if got := paths["/v1/metrics"] > 0; got != tc.wantMetrics {
			t.Errorf("metrics exporter %q: OTLP metrics pushed = %v, want %v", tc.metricsExporter, got, tc.wantMetrics)
		}
	}
}

func TestBadMetricsExporter(t *testing.T) {
	t.Parallel()
	env := map[string]string{EnvEndpoint: "http://127.0.0.1:1", EnvMetricsExporter: "zipkin"}
	if _, err := New(context.Background(), "x", func(k string) string { return env[k] }); err == nil {
		t.Error("accepted OTEL_METRICS_EXPORTER=zipkin")
	}
}

package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/heraldhq/herald/services/internal/telemetry"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// StartTelemetry installs tracing and metrics for a process and registers
// the consumer-lag gauges of the durables it reads. The returned stop
// flushes spans and metrics; call it last, after the NATS connection
// drained.
func StartTelemetry(ctx context.Context, name string, getenv func(string) string, js jetstream.JetStream, durables []contract.Durable, logger *slog.Logger) (*telemetry.Metrics, func(), error) {
	shutdown, err := telemetry.Setup(ctx, name, getenv)
	if err != nil {
		return nil, nil, err
	}
	meter := telemetryMeter()
	m, err := telemetry.NewMetrics(meter)
	if err != nil {
		return nil, nil, err
	}
	var regs []metric.Registration
	for _, d := range durables {
		reg, err := telemetry.RegisterConsumerLag(meter, js, d.Stream, d.Name)
		if err != nil {
			return nil, nil, err
		}
		regs = append(regs, reg)
	}
	stop := func() {
		for _, r := range regs {
			_ = r.Unregister()
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			logger.Warn("flush telemetry", "error", err)
		}
	}
	return m, stop, nil
}

func telemetryMeter() metric.Meter { return otel.Meter("github.com/heraldhq/herald") }

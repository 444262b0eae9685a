package engine

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// BenchmarkEngineKV measures end-to-end transitions per second through one
// engine (4 workers) on the embedded server: event in EVENTS -> KV CAS ->
// notification in NOTIFICATIONS -> pending cleared. Half the inputs open an
// alert, half resolve it.
func BenchmarkEngineKV(b *testing.B) {
	srv := natstest.Run(b)
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, srv.JS, contract.EventsStream(contract.DefaultTopology)); err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Workers: 4, OperationDeadline: time.Hour}, deps(srv))
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	defer func() { cancel(); <-done }()
	natstest.Eventually(b, 20*time.Second, s.Ready)
	const alerts = 1000
	total := 0
	for i := 0; b.Loop(); i++ {
		for _, active := range []bool{true, false} {
			for a := range alerts {
				e := event.New()
				e.SetID(fmt.Sprint(i, "-", a, "-", active))
				e.SetSource("bench")
				e.SetType(typeVManageAlarm)
				e.SetTime(time.Now())
				_ = e.SetData(event.ApplicationJSON, map[string]any{
					"rule_name_display": fmt.Sprint("rule-", a), "active": active, "severity_number": 1,
					"devices": []map[string]string{{"system-ip": "10.0.0.1"}}})
				if _, err := bus.PublishEvent(ctx, srv.JS, contract.EventSubject(tenant, typeVManageAlarm), "", e); err != nil {
					b.Fatal(err)
				}
			}
		}
		total += 2 * alerts
		natstest.Eventually(b, 120*time.Second, func() error {
			st, err := srv.JS.Stream(ctx, contract.StreamNotifications)
			if err != nil {
				return err
			}
			info, err := st.Info(ctx)
			if err != nil {
				return err
			}
			if int(info.State.Msgs) < total {
				return fmt.Errorf("%d of %d", info.State.Msgs, total)
			}
			return nil
		})
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "transitions/s")
}

func deps(srv *natstest.Server) service.Deps {
	return service.Deps{JS: srv.JS, Logger: slog.New(slog.DiscardHandler), Topology: contract.DefaultTopology}
}

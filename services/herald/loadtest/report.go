package loadtest

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Print writes the run's report as tables.
func Print(w io.Writer, r Results) {
	fmt.Fprintf(w, "Herald load run on %s, %d events per phase, concurrency %d, dispatcher endpoint concurrency %d, JetStream fsync always: %v\n\n",
		r.Machine, r.Events, r.Concurrency, r.EndpointConcurrency, r.SyncAlways)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ingest, single events\t%.0f events/s\n", r.IngestSingle.PerSecond)
	fmt.Fprintf(tw, "ingest, batches of 100\t%.0f events/s\n", r.IngestBatch100.PerSecond)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tsubs\tpairs\tdeliveries/s\tbare POST/s\tratio\tp50 ms\tp99 ms\tmax ms\tlost\tdup\taudited\trecorded twice")
	rows := append([]PhaseResult(nil), r.FanOut...)
	for _, f := range rows {
		fmt.Fprintf(tw, "saturation\t%d\t%d\t%.0f\t%.0f\t%.2f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\n", f.Subscriptions, f.Expected,
			f.DeliveriesPerSecond, f.Bare.PerSecond, f.RatioToBare, f.P50ms, f.P99ms, f.Maxms, f.Lost, f.Duplicates, f.Audited, f.DoubleRecorded)
	}
	for _, f := range r.FixedRate {
		fmt.Fprintf(tw, "%d events/s\t%d\t%d\t%.0f\t-\t-\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\n", f.Rate, f.Subscriptions, f.Expected,
			f.DeliveriesPerSecond, f.P50ms, f.P99ms, f.Maxms, f.Lost, f.Duplicates, f.Audited, f.DoubleRecorded)
	}
	for _, f := range r.Isolation {
		name := "9 healthy"
		if f.HungEndpoint {
			name = "9 + 1 hung"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t-\t-\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\n", name, f.Subscriptions, f.Expected,
			f.DeliveriesPerSecond, f.P50ms, f.P99ms, f.Maxms, f.Lost, f.Duplicates, f.Audited, f.DoubleRecorded)
	}
	tw.Flush()
	if len(r.Isolation) == 2 {
		fmt.Fprintf(w, "\nwith one of ten endpoints hung, the other nine kept %.0f%% of their deliveries/s\n", 100*r.IsolationKept)
	}
	fmt.Fprintf(w, "\npeak RSS %.0f MiB, %.2f CPU seconds per 1000 deliveries (Herald and the load program share the process)\n",
		r.PeakRSSMiB, r.CPUSecondsPer1000Deliveries)
}

// Package loadtest is Herald's load program, run by "herald bench": it
// drives events through the public ingest API of a running Herald
// (pkg/client), receives the webhooks on its own loopback receiver, and
// measures ingest rate, delivery rate and ingest-to-receipt latency, next
// to a bare Go HTTP client posting to the same receiver: the physical
// reference. The audit trail, read through the same API, must then record
// each pair delivered exactly once. Every loop is bounded in count and
// time and all traffic stays on loopback.
//
// Each phase is one function: ingest alone, fan-out at saturation per
// subscription count, latency at fixed rates, isolation from a hung
// endpoint, and the audit cross-check.
package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/heraldhq/herald/pkg/client"
)

// Target is the Herald under load and what the report says about it.
type Target struct {
	URL        string // base URL of its HTTP API
	AdminToken string
	// EndpointConcurrency is its dispatcher's cap on concurrent POSTs per
	// endpoint host; SyncAlways whether JetStream fsyncs every write.
	EndpointConcurrency int
	SyncAlways          bool
}

// Options choose the phases.
type Options struct {
	Events        int   // events per phase
	Subscriptions []int // subscriptions per event, one fan-out phase each
	Rates         []RatePhase
	RateSeconds   int  // length of each fixed-rate phase
	Hung          bool // run the isolation phases
	// Concurrency is the number of concurrent ingest requests and bare
	// client requests.
	Concurrency int
}

// RatePhase is one fixed-rate latency phase: Rate events per second, each
// to Subscriptions subscriptions.
type RatePhase struct{ Rate, Subscriptions int }

// fanOutCap bounds the pairs of one phase.
const fanOutCap = 50000

// run is one load run's state, shared by its phases.
type run struct {
	c          *client.Client
	rcv        *receiver
	o          Options
	res        Results
	deliveries int64 // received in every phase, for the CPU figure
}

// Run runs every phase against t and returns the measurements, audit
// counts included. It fails when a phase cannot run; whether the run lost
// or duplicated deliveries is Results.Check's to say.
func Run(ctx context.Context, t Target, o Options) (Results, error) {
	rcv, err := newReceiver()
	if err != nil {
		return Results{}, err
	}
	defer rcv.close()
	c := client.New(t.URL, client.WithToken(t.AdminToken), client.WithHTTPClient(&http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency * 2, MaxConnsPerHost: o.Concurrency * 2},
	}))
	if err := waitReady(ctx, c); err != nil {
		return Results{}, err
	}
	r := &run{c: c, rcv: rcv, o: o, res: Results{
		SyncAlways: t.SyncAlways, Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()),
		Events: o.Events, Concurrency: o.Concurrency, EndpointConcurrency: t.EndpointConcurrency,
	}}
	cpu0 := cpuSeconds()
	if err := r.ingestAlone(ctx); err != nil {
		return r.res, err
	}
	for _, n := range o.Subscriptions {
		if err := r.fanOut(ctx, n); err != nil {
			return r.res, err
		}
	}
	for _, rp := range o.Rates {
		if err := r.fixedRate(ctx, rp); err != nil {
			return r.res, err
		}
	}
	if o.Hung {
		// The hung endpoint stays up until the run ends, audit included.
		hungURL, stopHung, err := hangingEndpoint()
		if err != nil {
			return r.res, err
		}
		defer stopHung()
		if err := r.isolation(ctx, hungURL); err != nil {
			return r.res, err
		}
	}
	r.res.CPUSecondsPer1000Deliveries = (cpuSeconds() - cpu0) / float64(max(r.deliveries, 1)) * 1000
	r.res.PeakRSSMiB = peakRSSMiB()
	if err := r.audit(ctx); err != nil {
		return r.res, err
	}
	return r.res, nil
}

// ingestAlone measures ingest with no subscription to deliver to: single
// events, then batches of 100.
func (r *run) ingestAlone(ctx context.Context) error {
	if err := createTenant(ctx, r.c, "bench-ingest"); err != nil {
		return err
	}
	var err error
	if r.res.IngestSingle, err = ingest(ctx, r.c, "bench-ingest", "single", r.o.Events, 1, r.o.Concurrency); err != nil {
		return err
	}
	r.res.IngestBatch100, err = ingest(ctx, r.c, "bench-ingest", "batch", r.o.Events, 100, r.o.Concurrency)
	return err
}

// fanOut measures delivery at saturation with n subscriptions per event,
// and the bare client on the same receiver for the same number of POSTs.
func (r *run) fanOut(ctx context.Context, n int) error {
	tenant := fmt.Sprintf("bench-s%d", n)
	if err := r.subscribedTenant(ctx, tenant, n); err != nil {
		return err
	}
	nEvents := r.o.Events
	if n*nEvents > fanOutCap {
		nEvents = fanOutCap / n // bound the phase
	}
	p := r.rcv.startPhase(tenant, nEvents*n)
	start := time.Now()
	if _, err := ingest(ctx, r.c, tenant, "fanout", nEvents, 1, r.o.Concurrency); err != nil {
		return err
	}
	if err := p.wait(ctx); err != nil {
		return fmt.Errorf("fan-out %d: %w", n, err)
	}
	fr := p.result(time.Since(start))
	fr.tenant = tenant
	fr.Subscriptions = n
	fr.Events = nEvents
	fr.Bare = bare(ctx, r.rcv.url+"/bare", p.sampleBody(), nEvents*n, r.o.Concurrency)
	if fr.Bare.PerSecond > 0 {
		fr.RatioToBare = fr.DeliveriesPerSecond / fr.Bare.PerSecond
	}
	r.deliveries += int64(fr.Received)
	r.res.FanOut = append(r.res.FanOut, fr)
	return nil
}

// fixedRate measures latency at a moderate, fixed event rate.
func (r *run) fixedRate(ctx context.Context, rp RatePhase) error {
	tenant := fmt.Sprintf("bench-rate%dx%d", rp.Rate, rp.Subscriptions)
	if err := r.subscribedTenant(ctx, tenant, rp.Subscriptions); err != nil {
		return err
	}
	total := rp.Rate * r.o.RateSeconds
	p := r.rcv.startPhase(tenant, total*rp.Subscriptions)
	start := time.Now()
	if err := paced(ctx, r.c, tenant, total, rp.Rate); err != nil {
		return err
	}
	if err := p.wait(ctx); err != nil {
		return fmt.Errorf("fixed rate %dx%d: %w", rp.Rate, rp.Subscriptions, err)
	}
	fr := p.result(time.Since(start))
	fr.tenant = tenant
	fr.Subscriptions, fr.Events, fr.Rate = rp.Subscriptions, total, rp.Rate
	r.res.FixedRate = append(r.res.FixedRate, fr)
	r.deliveries += int64(fr.Received)
	return nil
}

// isolation runs nine healthy endpoints alone, then the same nine beside a
// tenth at hungURL, on another host, that never answers (each POST to it
// runs into the dispatcher's timeout). The healthy nine should keep their
// pace.
func (r *run) isolation(ctx context.Context, hungURL string) error {
	for _, withHung := range []bool{false, true} {
		tenant := "bench-healthy9"
		if withHung {
			tenant = "bench-hung1of10"
		}
		if err := r.subscribedTenant(ctx, tenant, 9); err != nil {
			return err
		}
		if withHung {
			if err := subscribe(ctx, r.c, tenant, hungURL, 1); err != nil {
				return err
			}
		}
		nEvents := min(r.o.Events, fanOutCap/10)
		p := r.rcv.startPhase(tenant, nEvents*9)
		start := time.Now()
		if _, err := ingest(ctx, r.c, tenant, "isolation", nEvents, 1, r.o.Concurrency); err != nil {
			return err
		}
		if err := p.wait(ctx); err != nil {
			return fmt.Errorf("isolation (hung endpoint %v): %w", withHung, err)
		}
		fr := p.result(time.Since(start))
		fr.tenant = tenant
		fr.Subscriptions, fr.Events, fr.HungEndpoint = 9, nEvents, withHung
		r.res.Isolation = append(r.res.Isolation, fr)
		r.deliveries += int64(fr.Received)
	}
	if a, b := r.res.Isolation[0].DeliveriesPerSecond, r.res.Isolation[1].DeliveriesPerSecond; a > 0 {
		r.res.IsolationKept = b / a
	}
	return nil
}

// audit reads, through the public API once the measured part is over,
// how many pairs of each phase the audit trail records delivered, and how
// many it records twice.
func (r *run) audit(ctx context.Context) error {
	for _, f := range r.res.phases() {
		var err error
		if f.Audited, f.DoubleRecorded, err = auditDelivered(ctx, r.c, f.tenant, f.Expected); err != nil {
			return err
		}
	}
	return nil
}

// subscribedTenant creates tenant with n subscriptions to the receiver.
func (r *run) subscribedTenant(ctx context.Context, tenant string, n int) error {
	if err := createTenant(ctx, r.c, tenant); err != nil {
		return err
	}
	return subscribe(ctx, r.c, tenant, r.rcv.url+"/"+tenant, n)
}

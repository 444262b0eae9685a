package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/services/herald/loadtest"
)

// benchCmd is "herald bench": it starts an embedded Herald in this process
// and runs the load program (package loadtest) against it, then prints the
// report, writes it as JSON, and fails if any delivery was lost, doubled or
// missing from the audit trail.
func benchCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.Int("events", 2000, "events per phase")
	subsList := fs.String("subs", "1,10,100", "subscriptions per event, one phase each")
	rates := fs.String("rate", "500x1,75x10", "fixed-rate latency phases, each EVENTS_PER_SECONDxSUBSCRIPTIONS (a bare number means x1)")
	rateSecs := fs.Int("rate-seconds", 5, "length of each fixed-rate phase")
	hung := fs.Bool("hung", true, "run the isolation phases: 9 healthy subscriptions alone, then with a 10th whose endpoint never answers")
	conc := fs.Int("concurrency", 32, "concurrent ingest requests and bare client requests, and the embedded dispatcher's cap on concurrent POSTs to the receiver (unless HERALD_DISPATCHER_ENDPOINT_CONCURRENCY is set)")
	jsonOut := fs.String("json", "bench.json", "write the results as JSON to this file (empty: don't)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	syncAlways := fs.Bool("sync-always", true, "fsync every JetStream write before its ack (the default); false uses the server's periodic fsync")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (Herald and the load program) to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile at the end of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := loadtest.Options{Events: *events, RateSeconds: *rateSecs, Hung: *hung, Concurrency: *conc}
	for _, r := range splitList(*rates) {
		ev, subs, ok := strings.Cut(r, "x")
		if !ok {
			subs = "1"
		}
		e, err1 := strconv.Atoi(ev)
		n, err2 := strconv.Atoi(subs)
		if err1 != nil || err2 != nil || e < 1 || n < 1 || n > 1000 {
			return fmt.Errorf("--rate: %q is not EVENTS_PER_SECONDxSUBSCRIPTIONS", r)
		}
		opts.Rates = append(opts.Rates, loadtest.RatePhase{Rate: e, Subscriptions: n})
	}
	for _, s := range splitList(*subsList) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("--subs: %q is not a count from 1 to 1000", s)
		}
		opts.Subscriptions = append(opts.Subscriptions, n)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		defer func() {
			if f, err := os.Create(*memProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	// Every subscription of the bench points at the one receiver host, and
	// the dispatcher caps concurrent POSTs per endpoint host: the embedded
	// Herald gets the bare client's concurrency as that cap, so that the
	// two are compared like for like (unless the environment sets it).
	endpointConc := getenv(envEndpointConcurrency)
	if endpointConc == "" {
		endpointConc = strconv.Itoa(*conc)
	}
	heraldEnv := func(k string) string {
		if k == envEndpointConcurrency {
			return endpointConc
		}
		return getenv(k)
	}
	h, stop, err := startBenchHerald(ctx, heraldEnv, *syncAlways)
	if err != nil {
		return err
	}
	defer stop()
	target := loadtest.Target{URL: h.HTTPURL, AdminToken: h.AdminToken, SyncAlways: *syncAlways}
	target.EndpointConcurrency, _ = strconv.Atoi(endpointConc) // Herald started, so it parses

	res, err := loadtest.Run(ctx, target, opts)
	if err != nil {
		return err
	}
	loadtest.Print(stdout, res)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", *jsonOut)
	}
	return res.Check()
}

// startBenchHerald runs an embedded Herald on a temporary directory until
// stop is called; stop waits for it to end and removes the directory.
func startBenchHerald(ctx context.Context, getenv func(string) string, syncAlways bool) (h started, stop func(), err error) {
	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return h, nil, err
	}
	hctx, cancel := context.WithCancel(ctx)
	startedc := make(chan started, 1)
	herr := make(chan error, 1)
	go func() {
		cfg := Config{HTTPAddr: "127.0.0.1:0", DataDir: dir, NATSHost: "127.0.0.1", NATSPort: -1, AdminToken: newToken(), SyncAlways: syncAlways}
		herr <- runEmbedded(hctx, cfg, getenv, io.Discard, func(s started) { startedc <- s })
	}()
	select {
	case h = <-startedc:
		return h, func() {
			cancel()
			<-herr
			_ = os.RemoveAll(dir)
		}, nil
	case err = <-herr:
		err = fmt.Errorf("start herald: %w", err)
	case <-ctx.Done():
		cancel()
		<-herr // it stops on cancel; the directory is removed after
		err = ctx.Err()
	}
	cancel()
	_ = os.RemoveAll(dir)
	return h, nil, err
}

// envEndpointConcurrency is the dispatcher's cap on concurrent POSTs per
// endpoint host.
const envEndpointConcurrency = "HERALD_DISPATCHER_ENDPOINT_CONCURRENCY"

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/heraldhq/herald/pkg/client"
	"github.com/heraldhq/herald/pkg/service"
)

// benchCmd is the load program: it drives events through the public ingest
// API of a Herald (an embedded one in this process by default), receives the
// webhooks on its own loopback receiver, and reports ingest rate, delivery
// rate and ingest-to-receipt latency, next to a bare Go HTTP client posting
// to the same receiver: the physical reference. Every loop is bounded in
// count and time and all traffic stays on loopback.
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
	type ratePhase struct{ rate, subs int }
	var ratePhases []ratePhase
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
		ratePhases = append(ratePhases, ratePhase{e, n})
	}
	subsCounts := []int{}
	for _, s := range splitList(*subsList) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("--subs: %q is not a count from 1 to 1000", s)
		}
		subsCounts = append(subsCounts, n)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "herald-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	hctx, stopHerald := context.WithCancel(ctx)
	defer stopHerald()
	startedc := make(chan started, 1)
	herr := make(chan error, 1)
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
	go func() {
		cfg := Config{HTTPAddr: "127.0.0.1:0", DataDir: dir, NATSHost: "127.0.0.1", NATSPort: -1, AdminToken: newToken(), SyncAlways: *syncAlways}
		herr <- runEmbedded(hctx, cfg, heraldEnv, io.Discard, func(s started) { startedc <- s })
	}()
	var h started
	select {
	case h = <-startedc:
	case err := <-herr:
		return fmt.Errorf("start herald: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() {
		stopHerald()
		<-herr
	}()
	rcv, err := newBenchReceiver()
	if err != nil {
		return err
	}
	defer rcv.close()
	c := client.New(h.HTTPURL, client.WithToken(h.AdminToken), client.WithHTTPClient(&http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *conc * 2, MaxConnsPerHost: *conc * 2},
	}))
	if err := waitReady(ctx, c); err != nil {
		return err
	}
	res := benchResults{SyncAlways: *syncAlways, Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()),
		Events: *events, Concurrency: *conc}
	res.EndpointConcurrency, _ = strconv.Atoi(endpointConc) // Herald started, so it parses
	cpu0 := cpuSeconds()

	// Ingest alone: a tenant with no subscriptions.
	if err := benchTenant(ctx, c, "bench-ingest"); err != nil {
		return err
	}
	res.IngestSingle, err = ingest(ctx, c, "bench-ingest", "single", *events, 1, *conc, nil)
	if err != nil {
		return err
	}
	res.IngestBatch100, err = ingest(ctx, c, "bench-ingest", "batch", *events, 100, *conc, nil)
	if err != nil {
		return err
	}

	// Fan-out at saturation, one phase per subscription count.
	var deliveries int64
	for _, n := range subsCounts {
		tenant := fmt.Sprintf("bench-s%d", n)
		if err := benchTenant(ctx, c, tenant); err != nil {
			return err
		}
		if err := benchSubscribe(ctx, c, tenant, rcv.url+"/"+tenant, n); err != nil {
			return err
		}
		nEvents := *events
		if n*nEvents > 50000 {
			nEvents = 50000 / n // bound the phase
		}
		phase := rcv.startPhase(tenant, nEvents*n)
		start := time.Now()
		if _, err := ingest(ctx, c, tenant, "fanout", nEvents, 1, *conc, phase); err != nil {
			return err
		}
		if err := phase.wait(ctx); err != nil {
			return fmt.Errorf("fan-out %d: %w", n, err)
		}
		elapsed := time.Since(start)
		fr := phase.result(elapsed)
		fr.tenant = tenant
		fr.Subscriptions = n
		fr.Events = nEvents
		fr.Bare = bare(ctx, rcv.url+"/bare", phase.sampleBody(), nEvents*n, *conc)
		if fr.Bare.PerSecond > 0 {
			fr.RatioToBare = fr.DeliveriesPerSecond / fr.Bare.PerSecond
		}
		deliveries += int64(fr.Received)
		res.FanOut = append(res.FanOut, fr)
	}

	// Latency at fixed moderate rates.
	for _, rp := range ratePhases {
		tenant := fmt.Sprintf("bench-rate%dx%d", rp.rate, rp.subs)
		if err := benchTenant(ctx, c, tenant); err != nil {
			return err
		}
		if err := benchSubscribe(ctx, c, tenant, rcv.url+"/"+tenant, rp.subs); err != nil {
			return err
		}
		total := rp.rate * *rateSecs
		phase := rcv.startPhase(tenant, total*rp.subs)
		start := time.Now()
		if err := paced(ctx, c, tenant, total, rp.rate, phase); err != nil {
			return err
		}
		if err := phase.wait(ctx); err != nil {
			return fmt.Errorf("fixed rate %dx%d: %w", rp.rate, rp.subs, err)
		}
		fr := phase.result(time.Since(start))
		fr.tenant = tenant
		fr.Subscriptions, fr.Events, fr.Rate = rp.subs, total, rp.rate
		res.FixedRate = append(res.FixedRate, fr)
		deliveries += int64(fr.Received)
	}

	// Isolation: nine healthy endpoints alone, then the same nine beside a
	// tenth on another host that never answers (each POST to it runs into
	// the dispatcher's timeout). The healthy nine should keep their pace.
	if *hung {
		hungURL, stopHung, err := hangingEndpoint()
		if err != nil {
			return err
		}
		defer stopHung()
		for _, withHung := range []bool{false, true} {
			tenant := "bench-healthy9"
			if withHung {
				tenant = "bench-hung1of10"
			}
			if err := benchTenant(ctx, c, tenant); err != nil {
				return err
			}
			if err := benchSubscribe(ctx, c, tenant, rcv.url+"/"+tenant, 9); err != nil {
				return err
			}
			if withHung {
				if err := benchSubscribe(ctx, c, tenant, hungURL, 1); err != nil {
					return err
				}
			}
			nEvents := min(*events, 50000/10)
			phase := rcv.startPhase(tenant, nEvents*9)
			start := time.Now()
			if _, err := ingest(ctx, c, tenant, "isolation", nEvents, 1, *conc, phase); err != nil {
				return err
			}
			if err := phase.wait(ctx); err != nil {
				return fmt.Errorf("isolation (hung endpoint %v): %w", withHung, err)
			}
			fr := phase.result(time.Since(start))
			fr.tenant = tenant
			fr.Subscriptions, fr.Events, fr.HungEndpoint = 9, nEvents, withHung
			res.Isolation = append(res.Isolation, fr)
			deliveries += int64(fr.Received)
		}
		if a, b := res.Isolation[0].DeliveriesPerSecond, res.Isolation[1].DeliveriesPerSecond; a > 0 {
			res.IsolationKept = b / a
		}
	}
	res.CPUSecondsPer1000Deliveries = (cpuSeconds() - cpu0) / float64(max(deliveries, 1)) * 1000
	res.PeakRSSMiB = peakRSSMiB()

	// The audit trail, read through the public API once the measured part
	// is over, must record each pair delivered exactly once.
	var phases []*phaseResult
	for _, list := range [][]phaseResult{res.FanOut, res.FixedRate, res.Isolation} {
		for i := range list {
			phases = append(phases, &list[i])
		}
	}
	for _, f := range phases {
		if f.Audited, f.DoubleRecorded, err = auditDelivered(ctx, c, f.tenant, f.Expected); err != nil {
			return err
		}
	}

	printBench(stdout, res)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", *jsonOut)
	}
	for _, f := range phases {
		if f.Lost > 0 || f.Duplicates > 0 || f.Audited != f.Expected || f.DoubleRecorded > 0 {
			return fmt.Errorf("%d subscriptions: %d lost, %d duplicate deliveries, %d of %d pairs in the audit trail, %d recorded delivered twice",
				f.Subscriptions, f.Lost, f.Duplicates, f.Audited, f.Expected, f.DoubleRecorded)
		}
	}
	return nil
}

// envEndpointConcurrency is the dispatcher's cap on concurrent POSTs per
// endpoint host.
const envEndpointConcurrency = "HERALD_DISPATCHER_ENDPOINT_CONCURRENCY"

type benchResults struct {
	Machine             string        `json:"machine"`
	SyncAlways          bool          `json:"sync_always"`
	Events              int           `json:"events"`
	Concurrency         int           `json:"concurrency"`
	EndpointConcurrency int           `json:"dispatcher_endpoint_concurrency"`
	IngestSingle        rateResult    `json:"ingest_single"`
	IngestBatch100      rateResult    `json:"ingest_batch100"`
	FanOut              []phaseResult `json:"fan_out"`
	FixedRate           []phaseResult `json:"fixed_rate"`
	// Isolation is nine healthy subscriptions alone, then beside a hung
	// tenth; IsolationKept is the second's deliveries/s over the first's.
	Isolation                   []phaseResult `json:"isolation,omitempty"`
	IsolationKept               float64       `json:"isolation_kept,omitempty"`
	CPUSecondsPer1000Deliveries float64       `json:"cpu_seconds_per_1000_deliveries"`
	PeakRSSMiB                  float64       `json:"peak_rss_mib"`
}

type rateResult struct {
	Count     int     `json:"count"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
}

type phaseResult struct {
	Subscriptions       int        `json:"subscriptions"`
	Rate                int        `json:"events_per_second,omitempty"`
	HungEndpoint        bool       `json:"hung_endpoint,omitempty"`
	Events              int        `json:"events"`
	Expected            int        `json:"expected_pairs"`
	Received            int        `json:"received"`
	Lost                int        `json:"lost"`
	Duplicates          int        `json:"duplicates"`
	DeliveriesPerSecond float64    `json:"deliveries_per_second"`
	P50ms               float64    `json:"p50_ms"`
	P99ms               float64    `json:"p99_ms"`
	Maxms               float64    `json:"max_ms"`
	Bare                rateResult `json:"bare_client"`
	RatioToBare         float64    `json:"ratio_to_bare"`
	// Audited pairs are those the audit trail records delivered;
	// DoubleRecorded are those it records delivered more than once.
	Audited        int `json:"audited_pairs"`
	DoubleRecorded int `json:"double_recorded_pairs"`

	tenant string
}

// auditDelivered pages through the tenant's delivered attempts in the
// audit trail until it holds expected pairs, and counts the pairs and the
// pairs recorded delivered more than once, by webhook-id. The audit
// consumes ATTEMPTS asynchronously and, with fsync always, behind the
// dispatcher: it is waited for while it makes progress, and given up on
// after 30 s without any.
func auditDelivered(ctx context.Context, c *client.Client, tenant string, expected int) (pairs, doubles int, err error) {
	const stall = 30 * time.Second
	deadline, best := time.Now().Add(stall), -1
	for {
		recorded := map[string]int{}
		cursor := ""
		for {
			var page struct {
				Items []struct {
					WebhookID string `json:"webhookId"`
				} `json:"items"`
				NextCursor string `json:"next_cursor"`
			}
			path := "/v1/tenants/" + tenant + "/audit?kind=attempt&outcome=delivered&order=asc&limit=500"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			if err := c.Do(ctx, "GET", path, "", nil, &page); err != nil {
				return 0, 0, fmt.Errorf("audit of %s: %w", tenant, err)
			}
			for _, it := range page.Items {
				recorded[it.WebhookID]++
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		doubles = 0
		for _, n := range recorded {
			if n > 1 {
				doubles++
			}
		}
		if len(recorded) > best {
			best, deadline = len(recorded), time.Now().Add(stall)
		}
		if len(recorded) >= expected || time.Now().After(deadline) {
			return len(recorded), doubles, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func waitReady(ctx context.Context, c *client.Client) error {
	for {
		if c.Ready(ctx) == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("herald not ready")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func benchTenant(ctx context.Context, c *client.Client, id string) error {
	body, _ := json.Marshal(map[string]any{"id": id, "name": id, "kind": "account",
		"settings": map[string]any{"subscription_quota": 1000, "ingest_rate_limit": 1e6}})
	return c.Do(ctx, "POST", "/v1/tenants", "application/json", body, nil)
}

var benchSeq atomic.Int64

func benchEvent(sent time.Time) map[string]any {
	id := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), benchSeq.Add(1))
	return map[string]any{"specversion": "1.0", "id": id, "source": "urn:herald:bench", "type": "bench.tick",
		"datacontenttype": "application/json", "data": map[string]any{"sent_unix_nano": sent.UnixNano(), "pad": strings.Repeat("x", 200)}}
}

// ingest posts count events in requests of batch events with conc workers.
func ingest(ctx context.Context, c *client.Client, tenant, label string, count, batch, conc int, _ *benchPhase) (rateResult, error) {
	requests := (count + batch - 1) / batch
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= requests || ctx.Err() != nil {
					return
				}
				n := min(batch, count-i*batch)
				var body []byte
				ct := "application/cloudevents+json"
				if batch == 1 {
					body, _ = json.Marshal(benchEvent(time.Now()))
				} else {
					evs := make([]map[string]any, n)
					for j := range evs {
						evs[j] = benchEvent(time.Now())
					}
					body, _ = json.Marshal(evs)
					ct = "application/cloudevents-batch+json"
				}
				if err := postRetrying(ctx, c, "/v1/tenants/"+tenant+"/events", ct, body); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s ingest: %w", label, err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	return rateResult{Count: count, Seconds: secs, PerSecond: float64(count) / secs}, firstErr
}

// postRetrying posts once, retrying only on 429/503 with Retry-After, as a
// well-behaved producer would.
func postRetrying(ctx context.Context, c *client.Client, path, ct string, body []byte) error {
	for attempt := 0; attempt < 20; attempt++ {
		err := c.Do(ctx, "POST", path, ct, body, nil)
		var ae *client.Error
		if errors.As(err, &ae) && (ae.Status == 429 || ae.Status == 503) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		return err
	}
	return errors.New("still throttled after 20 tries")
}

// benchSubscribe gives tenant n subscriptions to url for every bench event.
func benchSubscribe(ctx context.Context, c *client.Client, tenant, url string, n int) error {
	for i := 0; i < n; i++ {
		body, _ := json.Marshal(map[string]any{"url": url, "events": []string{"bench.*"}})
		if err := c.Do(ctx, "POST", "/v1/tenants/"+tenant+"/subscriptions", "application/json", body, nil); err != nil {
			return fmt.Errorf("subscribe %s %d/%d: %w", tenant, i+1, n, err)
		}
	}
	return nil
}

// hangingEndpoint is a receiver on its own host:port that reads each
// request and never answers until the client gives up.
func hangingEndpoint() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := service.NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/hung", func() { _ = srv.Close() }, nil
}

// paced posts total single events at rate per second.
func paced(ctx context.Context, c *client.Client, tenant string, total, rate int, _ *benchPhase) error {
	interval := time.Second / time.Duration(rate)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			body, _ := json.Marshal(benchEvent(time.Now()))
			if err := postRetrying(ctx, c, "/v1/tenants/"+tenant+"/events", "application/cloudevents+json", body); err != nil {
				once.Do(func() { firstErr = err })
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// bare posts the same body to the same receiver with a plain client: the
// physical limit of this machine for this request.
func bare(ctx context.Context, url string, body []byte, count, conc int) rateResult {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for int(next.Add(1)) <= count && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/cloudevents+json")
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	return rateResult{Count: count, Seconds: secs, PerSecond: float64(count) / secs}
}

// benchReceiver is the webhook endpoint of the load program.
type benchReceiver struct {
	url string
	srv *http.Server
	ln  net.Listener
	mu  sync.Mutex
	cur *benchPhase
}

type benchPhase struct {
	path      string
	expected  int
	mu        sync.Mutex
	seen      map[string]int
	latencies []time.Duration
	sample    []byte
	done      chan struct{}
	closed    bool
}

func newBenchReceiver() (*benchReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &benchReceiver{url: "http://" + ln.Addr().String(), ln: ln}
	r.srv = service.NewHTTPServer(http.HandlerFunc(r.serve))
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *benchReceiver) close() { _ = r.srv.Close() }

func (r *benchReceiver) startPhase(tenant string, expected int) *benchPhase {
	p := &benchPhase{path: "/" + tenant, expected: expected, seen: map[string]int{}, done: make(chan struct{})}
	r.mu.Lock()
	r.cur = p
	r.mu.Unlock()
	return p
}

func (r *benchReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	now := time.Now()
	r.mu.Lock()
	p := r.cur
	r.mu.Unlock()
	if p == nil || req.URL.Path != p.path {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var ev struct {
		Data struct {
			Sent int64 `json:"sent_unix_nano"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	p.mu.Lock()
	id := req.Header.Get("webhook-id")
	p.seen[id]++
	if p.seen[id] == 1 && ev.Data.Sent > 0 {
		p.latencies = append(p.latencies, now.Sub(time.Unix(0, ev.Data.Sent)))
	}
	if p.sample == nil {
		p.sample = body
	}
	if len(p.seen) >= p.expected && !p.closed {
		p.closed = true
		close(p.done)
	}
	p.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (p *benchPhase) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		return fmt.Errorf("received %d of %d pairs before the deadline", len(p.seen), p.expected)
	}
}

func (p *benchPhase) sampleBody() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sample
}

func (p *benchPhase) result(elapsed time.Duration) phaseResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	total := 0
	for _, n := range p.seen {
		total += n
	}
	lat := append([]time.Duration(nil), p.latencies...)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))].Microseconds()) / 1000
	}
	return phaseResult{
		Expected: p.expected, Received: len(p.seen), Lost: max(0, p.expected-len(p.seen)),
		Duplicates: total - len(p.seen), DeliveriesPerSecond: float64(len(p.seen)) / elapsed.Seconds(),
		P50ms: q(0.50), P99ms: q(0.99), Maxms: q(1),
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

func printBench(w io.Writer, r benchResults) {
	fmt.Fprintf(w, "Herald load run on %s, %d events per phase, concurrency %d, dispatcher endpoint concurrency %d, JetStream fsync always: %v\n\n",
		r.Machine, r.Events, r.Concurrency, r.EndpointConcurrency, r.SyncAlways)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ingest, single events\t%.0f events/s\n", r.IngestSingle.PerSecond)
	fmt.Fprintf(tw, "ingest, batches of 100\t%.0f events/s\n", r.IngestBatch100.PerSecond)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tsubs\tpairs\tdeliveries/s\tbare POST/s\tratio\tp50 ms\tp99 ms\tmax ms\tlost\tdup\taudited\trecorded twice")
	rows := append([]phaseResult(nil), r.FanOut...)
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

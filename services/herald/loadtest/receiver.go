package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/services/internal/service"
)

// receiver is the webhook endpoint of the load program.
type receiver struct {
	url string
	srv *http.Server
	ln  net.Listener
	mu  sync.Mutex
	cur *phase
}

type phase struct {
	path      string
	expected  int
	mu        sync.Mutex
	seen      map[string]int
	latencies []time.Duration
	sample    []byte
	done      chan struct{}
	closed    bool
}

func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{url: "http://" + ln.Addr().String(), ln: ln}
	r.srv = service.NewHTTPServer(http.HandlerFunc(r.serve))
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) close() { _ = r.srv.Close() }

func (r *receiver) startPhase(tenant string, expected int) *phase {
	p := &phase{path: "/" + tenant, expected: expected, seen: map[string]int{}, done: make(chan struct{})}
	r.mu.Lock()
	r.cur = p
	r.mu.Unlock()
	return p
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
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

func (p *phase) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		return fmt.Errorf("received %d of %d pairs before the deadline", len(p.seen), p.expected)
	}
}

func (p *phase) sampleBody() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sample
}

func (p *phase) result(elapsed time.Duration) PhaseResult {
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
	return PhaseResult{
		Expected: p.expected, Received: len(p.seen), Lost: max(0, p.expected-len(p.seen)),
		Duplicates: total - len(p.seen), DeliveriesPerSecond: float64(len(p.seen)) / elapsed.Seconds(),
		P50ms: q(0.50), P99ms: q(0.99), Maxms: q(1),
	}
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

// bare posts the same body to the same receiver with a plain client: the
// physical limit of this machine for this request.
func bare(ctx context.Context, url string, body []byte, count, conc int) RateResult {
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
	return RateResult{Count: count, Seconds: secs, PerSecond: float64(count) / secs}
}

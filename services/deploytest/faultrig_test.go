package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// The fault suite runs real nats-server processes and real Herald service
// processes, injects one fault under load and then checks, for every
// accepted event, that each (notification, subscription) pair:
//   - was answered 2xx by the receiver at least once,
//   - is recorded delivered exactly once on ATTEMPTS, under the webhook-id the
//     receiver saw,
//   - reached the receiver under one webhook-id only, however many POSTs it took.
//
// The receiver's duplicates (2xx POSTs beyond the first of a pair) are the
// price of at-least-once HTTP; each scenario reports their number, in the
// test log and, when HERALD_FAULT_REPORT names a file, as a line appended to
// it (.ci/run prints that file).

const faultToken = "dev-admin-token-change-me"

var (
	serviceBinOnce sync.Once
	serviceBinDir  string
	serviceBinErr  error
)

// serviceBinaries builds the five per-service binaries once per test binary
// into the directory TestMain made.
func serviceBinaries(t testing.TB) string {
	t.Helper()
	serviceBinOnce.Do(func() {
		serviceBinDir = filepath.Join(filepath.Dir(serverBin), "services")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		for _, name := range []string{"registry", "collector", "engine", "dispatcher", "audit"} {
			out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(serviceBinDir, "herald-"+name),
				"github.com/heraldhq/herald/services/"+name+"/cmd/herald-"+name).CombinedOutput()
			if err != nil {
				serviceBinErr = fmt.Errorf("build herald-%s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if serviceBinErr != nil {
		t.Fatal(serviceBinErr)
	}
	return serviceBinDir
}

// Receiver behaviours.
const (
	answerOK int32 = iota
	answer500
	answerHang // hold the request until the client gives up
)

// note is what the receiver saw of one notification (one pair: every rig
// has one subscription).
type note struct {
	Type       string
	Data       json.RawMessage
	WebhookIDs map[string]bool
	Answered   int // POSTs answered 2xx
}

// faultReceiver is the subscriber's endpoint: a real HTTP server that
// records every POST by the notification it carries.
type faultReceiver struct {
	*httptest.Server
	mode  atomic.Int32
	delay time.Duration

	mu     sync.Mutex
	notes  map[string]*note // by notification (CloudEvent) id
	byMode [3]int           // POSTs seen in each mode
}

func newFaultReceiver(t *testing.T, delay time.Duration) *faultReceiver {
	r := &faultReceiver{delay: delay, notes: map[string]*note{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *faultReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var ce struct {
		ID   string          `json:"id"`
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err == nil {
		err = json.Unmarshal(body, &ce)
	}
	if err != nil || ce.ID == "" {
		http.Error(w, "not a CloudEvent", http.StatusBadRequest)
		return
	}
	mode := r.mode.Load()
	r.mu.Lock()
	n := r.notes[ce.ID]
	if n == nil {
		n = &note{Type: ce.Type, Data: ce.Data, WebhookIDs: map[string]bool{}}
		r.notes[ce.ID] = n
	}
	n.WebhookIDs[req.Header.Get("webhook-id")] = true
	r.byMode[mode]++
	r.mu.Unlock()
	switch mode {
	case answer500:
		http.Error(w, "receiver failing on purpose", http.StatusInternalServerError)
		return
	case answerHang:
		<-req.Context().Done()
		return
	}
	if r.delay > 0 {
		time.Sleep(r.delay) // keeps POSTs in flight when a fault lands
	}
	r.mu.Lock()
	n.Answered++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// seen returns POSTs seen in mode.
func (r *faultReceiver) seen(mode int32) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byMode[mode]
}

// delivered returns a copy of the notes answered 2xx at least once.
func (r *faultReceiver) delivered() map[string]note {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]note{}
	for id, n := range r.notes {
		if n.Answered > 0 {
			c := *n
			c.WebhookIDs = map[string]bool{}
			for k := range n.WebhookIDs {
				c.WebhookIDs[k] = true
			}
			out[id] = c
		}
	}
	return out
}

// faultRig is one Herald (processes) on one NATS (single server or cluster)
// with one tenant subscribed to the receiver.
type faultRig struct {
	t        *testing.T
	bin      string
	natsURL  string
	env      map[string]string // set on every service
	admin    *client
	rcv      *faultReceiver
	reg, col *service
	// refused counts ingest requests that failed and were retried.
	refused atomic.Int64
	// ingested counts events accepted by the collector.
	ingested atomic.Int64
}

func newFaultRig(t *testing.T, natsURL string, env map[string]string, delay time.Duration) *faultRig {
	t.Helper()
	// Every group of two or more writes goes as one atomic batch, so that
	// each fault lands on batches: staged and not committed, committed and
	// not acknowledged, half of a notification's pairs published.
	all := map[string]string{"HERALD_MIN_ATOMIC_BATCH": "2"}
	for k, v := range env {
		all[k] = v
	}
	r := &faultRig{t: t, bin: serviceBinaries(t), natsURL: natsURL, env: all}
	r.rcv = newFaultReceiver(t, delay)
	r.admin = connect(t, natsURL, "admin")
	r.reg = r.start("registry", "registry", map[string]string{"HERALD_REGISTRY_ALLOW_CIDRS": "127.0.0.0/8"})
	r.col = r.start("collector", "collector", nil)
	return r
}

// start runs one service process named name from the binary of base.
func (r *faultRig) start(name, base string, extra map[string]string) *service {
	r.t.Helper()
	env := map[string]string{"SERVICE": base}
	for k, v := range r.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	if base == "dispatcher" {
		env["HERALD_DISPATCHER_ALLOW_CIDRS"] = "127.0.0.0/8"
	}
	return startService(r.t, r.bin, name, r.natsURL, env)
}

// subscribe creates tenant and one subscription of it to the receiver.
func (r *faultRig) subscribe(tenant string, events ...string) {
	r.t.Helper()
	adminCall(r.t, r.reg, faultToken, "/v1/tenants", map[string]any{"id": tenant, "name": tenant, "kind": "account"}, http.StatusCreated)
	adminCall(r.t, r.reg, faultToken, "/v1/tenants/"+tenant+"/subscriptions",
		map[string]any{"url": r.rcv.URL + "/hook", "events": events}, http.StatusCreated)
}

// ingest posts batches through the collector's public API, pace apart,
// retrying a batch that failed or was refused (the bus being down answers
// 503) with the same ids until it is accepted: the collector dedups events
// by id, so a retry never makes a second notification.
func (r *faultRig) ingest(ctx context.Context, tenant string, batches [][]map[string]any, pace time.Duration) error {
	client := &http.Client{Timeout: 15 * time.Second}
	for _, batch := range batches {
		body, err := json.Marshal(batch)
		if err != nil {
			return err
		}
		for {
			req, err := http.NewRequestWithContext(ctx, "POST", "http://"+r.col.addr+"/v1/tenants/"+tenant+"/events", bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+faultToken)
			req.Header.Set("Content-Type", "application/cloudevents-batch+json")
			resp, err := client.Do(req)
			if err == nil {
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusAccepted:
				case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
					err = fmt.Errorf("collector: %d %s", resp.StatusCode, raw)
				default: // a 4xx is a defect of the test, never retried
					return fmt.Errorf("collector refused the batch: %d %s", resp.StatusCode, raw)
				}
			}
			if err == nil {
				r.ingested.Add(int64(len(batch)))
				break
			}
			r.refused.Add(1)
			select {
			case <-ctx.Done():
				return fmt.Errorf("batch never accepted: %w (last: %v)", ctx.Err(), err)
			case <-time.After(200 * time.Millisecond):
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pace):
		}
	}
	return nil
}

// ingestInBackground runs ingest in a goroutine the test owns: the
// returned wait blocks until it ends and fails the test on its error.
func (r *faultRig) ingestInBackground(tenant string, batches [][]map[string]any, pace time.Duration) (wait func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	done := make(chan error, 1)
	go func() { done <- r.ingest(ctx, tenant, batches, pace) }()
	r.t.Cleanup(cancel)
	return func() {
		r.t.Helper()
		if err := <-done; err != nil {
			r.t.Fatalf("ingest: %v", err)
		}
	}
}

// ticks are n events of type fault.tick in batches of size, each carrying
// its number.
func ticks(prefix string, n, size int) [][]map[string]any {
	var out [][]map[string]any
	for i := 0; i < n; i += size {
		var batch []map[string]any
		for j := i; j < min(n, i+size); j++ {
			batch = append(batch, map[string]any{"specversion": "1.0", "id": fmt.Sprintf("%s-%d", prefix, j),
				"source": "urn:fault", "type": "fault.tick", "data": map[string]int{"n": j}})
		}
		out = append(out, batch)
	}
	return out
}

// deliveredOnAttempts reads ATTEMPTS from the start and counts the
// delivered records of each webhook-id.
func deliveredOnAttempts(ctx context.Context, js jetstream.JetStream) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, contract.StreamAttempts)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	delivered := map[string]int{}
	if info.State.Msgs == 0 {
		return delivered, nil
	}
	cons, err := js.OrderedConsumer(ctx, contract.StreamAttempts, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	for last := info.State.LastSeq; ; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		var seq uint64
		for msg := range batch.Messages() {
			meta, err := msg.Metadata()
			if err != nil {
				return nil, err
			}
			seq = meta.Sequence.Stream
			e, err := cenats.Decode(msg.Headers(), msg.Data())
			if err != nil {
				return nil, err
			}
			var a payload.Attempt
			if err := json.Unmarshal(e.Data(), &a); err != nil {
				return nil, err
			}
			if a.Outcome == payload.OutcomeDelivered {
				delivered[a.WebhookID]++
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, err
		}
		if seq >= last {
			return delivered, nil
		}
		if seq == 0 {
			return nil, fmt.Errorf("ATTEMPTS read stalled before sequence %d", last)
		}
	}
}

// verify waits until complete accepts what the receiver has been answered
// 2xx and ATTEMPTS holds a delivered record for exactly those pairs, then
// asserts each pair reached the receiver under one webhook-id and was
// recorded once, and reports the duplicates.
func (r *faultRig) verify(scenario string, within time.Duration, complete func(map[string]note) error) {
	t := r.t
	t.Helper()
	var got map[string]note
	natstest.Eventually(t, within, func() error {
		got = r.rcv.delivered()
		return complete(got)
	})
	var onAttempts map[string]int
	deadline := time.Now().Add(time.Minute)
	for {
		var err error
		onAttempts, err = deliveredOnAttempts(context.Background(), r.admin.js)
		if err == nil {
			err = sameWebhookIDs(got, onAttempts)
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", scenario, err)
		}
		time.Sleep(250 * time.Millisecond) // each look reads the whole stream
	}
	posts, dups := 0, 0
	for id, n := range got {
		if len(n.WebhookIDs) != 1 {
			t.Errorf("%s: notification %s reached the receiver under %d webhook-ids %v, want 1", scenario, id, len(n.WebhookIDs), n.WebhookIDs)
		}
		posts += n.Answered
		dups += n.Answered - 1
	}
	for wid, c := range onAttempts {
		if c != 1 {
			t.Errorf("%s: pair %s recorded delivered %d times on ATTEMPTS, want 1", scenario, wid, c)
		}
	}
	line := fmt.Sprintf("%s: %d events accepted (%d ingest requests retried), %d pairs delivered and recorded once, %d POSTs answered 2xx, %d duplicates at the receiver (same webhook-id)",
		scenario, r.ingested.Load(), r.refused.Load(), len(got), posts, dups)
	t.Log(line)
	if path := os.Getenv("HERALD_FAULT_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := fmt.Fprintln(f, line); err != nil {
			t.Fatal(err)
		}
	}
}

// sameWebhookIDs checks the pairs the receiver answered 2xx are exactly the
// pairs ATTEMPTS records delivered.
func sameWebhookIDs(got map[string]note, onAttempts map[string]int) error {
	seen := map[string]bool{}
	for _, n := range got {
		for wid := range n.WebhookIDs {
			seen[wid] = true
			if onAttempts[wid] == 0 {
				return fmt.Errorf("pair %s answered 2xx by the receiver has no delivered record on ATTEMPTS (yet)", wid)
			}
		}
	}
	var extra []string
	for wid := range onAttempts {
		if !seen[wid] {
			extra = append(extra, wid)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("ATTEMPTS records %d pairs delivered that the receiver never answered 2xx: %s", len(extra), strings.Join(extra, ", "))
	}
	return nil
}

// allTicks is a complete func: n distinct fault.tick notifications, one
// per event number.
func allTicks(n int) func(map[string]note) error {
	return func(got map[string]note) error {
		nums := map[int]bool{}
		for _, note := range got {
			var d struct{ N int }
			if note.Type != "fault.tick" || json.Unmarshal(note.Data, &d) != nil {
				return fmt.Errorf("unexpected notification %s %s", note.Type, note.Data)
			}
			nums[d.N] = true
		}
		if len(got) != len(nums) {
			return fmt.Errorf("%d notifications for %d events: one event made two notifications", len(got), len(nums))
		}
		if len(nums) != n {
			return fmt.Errorf("%d of %d events delivered", len(nums), n)
		}
		return nil
	}
}

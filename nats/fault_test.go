package natsconf

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/cenats"
	"github.com/heraldhq/herald/pkg/contract"
	"github.com/heraldhq/herald/pkg/natstest"
	"github.com/heraldhq/herald/pkg/payload"
)

// buildServices builds the per-service binaries into a temp dir.
func buildServices(t *testing.T, names ...string) string {
	t.Helper()
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, name := range names {
		out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bin, "herald-"+name),
			"github.com/heraldhq/herald/services/"+name+"/cmd/herald-"+name).CombinedOutput()
		if err != nil {
			t.Fatalf("build herald-%s: %v\n%s", name, err, out)
		}
	}
	return bin
}

// service is one running Herald process.
type service struct {
	name, addr, log string
	cmd             *exec.Cmd
	done            chan error
}

func startService(t *testing.T, bin, name, natsURL string, extra map[string]string) *service {
	t.Helper()
	project := loadCompose(t)
	s := &service{name: name, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), done: make(chan error, 1)}
	env := []string{"PATH=" + os.Getenv("PATH")}
	base := extra["SERVICE"]
	if base == "" {
		base = name
	}
	for k, v := range project.Services[base].Environment {
		switch k {
		case "NATS_URL", "HERALD_HTTP_ADDR", "OTEL_EXPORTER_OTLP_ENDPOINT":
		default:
			env = append(env, k+"="+str(v))
		}
	}
	env = append(env, "NATS_URL="+natsURL, "HERALD_HTTP_ADDR="+s.addr)
	for k, v := range extra {
		if k != "SERVICE" {
			env = append(env, k+"="+v)
		}
	}
	s.cmd = exec.Command(filepath.Join(bin, "herald-"+base))
	s.cmd.Env = env
	s.log = filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { s.done <- s.cmd.Wait(); f.Close() }()
	t.Cleanup(func() { _ = s.cmd.Process.Kill() })
	natstest.Eventually(t, 60*time.Second, func() error {
		select {
		case err := <-s.done:
			b, _ := os.ReadFile(s.log)
			t.Fatalf("%s exited: %v\n%s", name, err, b)
		default:
		}
		resp, err := http.Get("http://" + s.addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s /readyz: %d", name, resp.StatusCode)
		}
		return nil
	})
	return s
}

func adminCall(t *testing.T, s *service, token, path string, body any, want int) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+s.addr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	if path[len(path)-len("events"):] == "events" {
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
}

// Fault: one of three dispatcher processes is killed with SIGKILL while it
// is posting. Every pair is still delivered, each is recorded as delivered
// exactly once on ATTEMPTS, and the duplicates the receiver saw (a POST
// whose 2xx was never recorded) carry the same webhook-id. The duplicate
// count is reported.
func TestKillOneOfThreeDispatchers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nine processes; run without -short")
	}
	t.Parallel()
	bin := buildServices(t, "registry", "collector", "engine", "dispatcher")
	p := startSingle(t)
	const token = "dev-admin-token-change-me"

	var mu sync.Mutex
	got := map[string]int{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // keep POSTs in flight when the kill lands
		mu.Lock()
		got[r.Header.Get("webhook-id")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	received := func() (distinct, total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range got {
			total += n
		}
		return len(got), total
	}

	reg := startService(t, bin, "registry", p.url(), map[string]string{"HERALD_REGISTRY_ALLOW_CIDRS": "127.0.0.0/8"})
	col := startService(t, bin, "collector", p.url(), nil)
	startService(t, bin, "engine", p.url(), nil)
	var dispatchers []*service
	for i := 1; i <= 3; i++ {
		dispatchers = append(dispatchers, startService(t, bin, fmt.Sprintf("dispatcher-%d", i), p.url(), map[string]string{
			"SERVICE": "dispatcher", "HERALD_DISPATCHER_ALLOW_CIDRS": "127.0.0.0/8",
			"HERALD_DISPATCHER_INSTANCE": fmt.Sprintf("d%d", i), "HERALD_DISPATCHER_WORKERS": "8",
		}))
	}
	adminCall(t, reg, token, "/v1/tenants", map[string]any{"id": "fault", "name": "Fault", "kind": "account"}, http.StatusCreated)
	adminCall(t, reg, token, "/v1/tenants/fault/subscriptions", map[string]any{"url": rcv.URL + "/hook", "events": []string{"fault.*"}}, http.StatusCreated)

	const events = 200
	go func() {
		for b := 0; b < events/20; b++ {
			batch := make([]map[string]any, 20)
			for i := range batch {
				batch[i] = map[string]any{"specversion": "1.0", "id": fmt.Sprintf("f-%d-%d", b, i), "source": "urn:fault", "type": "fault.tick", "data": map[string]int{"n": b*20 + i}}
			}
			adminCall(t, col, token, "/v1/tenants/fault/events", batch, http.StatusAccepted)
		}
	}()
	// Kill the first dispatcher once deliveries are flowing.
	natstest.Eventually(t, 60*time.Second, func() error {
		if d, _ := received(); d < 20 {
			return fmt.Errorf("%d delivered so far", d)
		}
		return nil
	})
	if err := dispatchers[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Each pair is recorded delivered exactly once. A pair whose 2xx the
	// killed process never recorded comes back after the consumer's AckWait
	// (60s) and its expired lease, is posted again with the same webhook-id,
	// and is recorded then.
	admin := connect(t, p.url(), "admin")
	ctx := context.Background()
	natstest.Eventually(t, 4*time.Minute, func() error {
		delivered := map[string]int{}
		cons, err := admin.js.OrderedConsumer(ctx, contract.StreamAttempts, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		pending := info.NumPending
		for i := uint64(0); i < pending; i++ {
			msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
			if err != nil {
				return err
			}
			e, err := cenats.Decode(msg.Headers(), msg.Data())
			if err != nil {
				return err
			}
			var a payload.Attempt
			if err := json.Unmarshal(e.Data(), &a); err != nil {
				return err
			}
			if a.Outcome == payload.OutcomeDelivered {
				delivered[a.WebhookID]++
			}
		}
		if len(delivered) != events {
			return fmt.Errorf("%d pairs recorded delivered, want %d", len(delivered), events)
		}
		for id, n := range delivered {
			if n != 1 {
				t.Fatalf("pair %s recorded delivered %d times", id, n)
			}
		}
		return nil
	})
	distinct, total := received()
	if distinct != events {
		t.Fatalf("receiver saw %d distinct webhook-ids, want %d", distinct, events)
	}
	t.Logf("fault suite: SIGKILL of 1 of 3 dispatchers: %d pairs, %d POSTs, %d duplicates at the receiver (same webhook-id)", distinct, total, total-distinct)
}

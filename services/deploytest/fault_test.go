package deploytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// service is one running Herald process.
type service struct {
	name, addr, log string
	cmd             *exec.Cmd
	done            chan error
}

// startService runs the binary named by extra["SERVICE"] (default name)
// with its environment from compose.yaml, NATS_URL and a free HTTP port,
// plus extra, and waits until it reports ready.
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
			env = append(env, k+"="+v) // later entries win
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
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(s.log)
			t.Logf("--- %s log (tail) ---\n%s", name, tail(string(b), 4000))
		}
	})
	natstest.Eventually(t, 90*time.Second, func() error {
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

// kill stops the process at once (SIGKILL) and waits for it to exit.
func (s *service) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit after SIGKILL", s.name)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

func adminCall(t *testing.T, s *service, token, path string, body any, want int) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+s.addr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	natstest.Eventually(t, within, func() error {
		if !cond() {
			return fmt.Errorf("waiting for %s", what)
		}
		return nil
	})
}

// Fault: one of three dispatcher processes is killed with SIGKILL while it
// is posting, with its pairs' records and its plan's pairs in half-sent
// batches. A first delivery holds no claim: the consumer gives the pair to
// the killed process alone until AckWait (30 s), then to another, which
// posts it again with the same webhook-id; ATTEMPTS keeps one delivered
// record per pair (its id is the pair's and the attempt's). A notification
// whose pairs were half published is planned again, and JetStream drops the
// pairs already stored.
func TestFaultKillOneOfThreeDispatchers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nine processes; run without -short")
	}
	t.Parallel()
	p := startSingle(t)
	rig := newFaultRig(t, p.url(), nil, 50*time.Millisecond)
	rig.start("engine", "engine", nil)
	var dispatchers []*service
	for i := 1; i <= 3; i++ {
		dispatchers = append(dispatchers, rig.start(fmt.Sprintf("dispatcher-%d", i), "dispatcher", map[string]string{
			"HERALD_DISPATCHER_INSTANCE": fmt.Sprintf("d%d", i), "HERALD_DISPATCHER_WORKERS": "8",
		}))
	}
	rig.subscribe("fault", "fault.*")

	const events = 200
	wait := rig.ingestInBackground("fault", ticks("kill", events, 10), 100*time.Millisecond)
	waitFor(t, 60*time.Second, "20 deliveries", func() bool { return len(rig.rcv.delivered()) >= 20 })
	// Kill d1 while the load runs: with 8 workers each and the receiver
	// taking 50 ms per request, each dispatcher always has POSTs in
	// flight and records waiting for their batch.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	deliver, err := rig.admin.js.Consumer(ctx, contract.StreamDeliveries, contract.ConsumerDeliverer)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "eight pairs in flight", func() bool {
		info, err := deliver.Info(ctx)
		return err == nil && info.NumAckPending >= 8
	})
	dispatchers[0].kill(t)
	wait()
	rig.verify("SIGKILL of 1 of 3 dispatchers", 4*time.Minute, allTicks(events))
}

// Fault: the NATS server is killed (SIGKILL) under load and started again
// on the same store. Ingest requests during the outage are refused with 503
// and retried by the client; the services reconnect; pairs whose outcome
// could not be recorded are posted again after AckWait with the same
// webhook-id.
func TestFaultNATSRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs six processes; run without -short")
	}
	t.Parallel()
	p := startSingle(t)
	rig := newFaultRig(t, p.url(), nil, 10*time.Millisecond)
	rig.start("engine", "engine", nil)
	rig.start("dispatcher", "dispatcher", map[string]string{"HERALD_DISPATCHER_WORKERS": "8"})
	rig.subscribe("fault", "fault.*")

	const events = 200
	wait := rig.ingestInBackground("fault", ticks("restart", events, 10), 100*time.Millisecond)
	waitFor(t, 60*time.Second, "20 deliveries", func() bool { return len(rig.rcv.delivered()) >= 20 })
	p.kill(t)
	// The outage lasts until the load has felt it.
	waitFor(t, 60*time.Second, "five refused ingest requests", func() bool { return rig.refused.Load() >= 5 })
	p.start(t)
	wait()
	rig.verify("NATS server SIGKILL and restart", 4*time.Minute, allTicks(events))
}

// Fault: a three-node JetStream cluster holds every stream and bucket at R3;
// under load the node leading DELIVERIES is killed and later brought back.
func TestFaultClusterNodeKilledAndBack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three nats-servers and five services; run without -short")
	}
	t.Parallel()
	nodes := startCluster(t)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.url()
	}
	rig := newFaultRig(t, strings.Join(urls, ","), map[string]string{"HERALD_REPLICAS": "3"}, 10*time.Millisecond)
	rig.start("engine", "engine", nil)
	rig.start("dispatcher-1", "dispatcher", map[string]string{"HERALD_DISPATCHER_INSTANCE": "d1", "HERALD_DISPATCHER_WORKERS": "8"})
	rig.start("dispatcher-2", "dispatcher", map[string]string{"HERALD_DISPATCHER_INSTANCE": "d2", "HERALD_DISPATCHER_WORKERS": "8"})
	rig.subscribe("fault", "fault.*")

	const events = 200
	wait := rig.ingestInBackground("fault", ticks("cluster", events, 10), 100*time.Millisecond)
	waitFor(t, 60*time.Second, "20 deliveries", func() bool { return len(rig.rcv.delivered()) >= 20 })
	ctx := context.Background()
	stream, err := rig.admin.js.Stream(ctx, contract.StreamDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil {
		t.Fatalf("DELIVERIES has %d replicas (cluster %v), want 3", info.Config.Replicas, info.Cluster)
	}
	var victim *proc
	for _, n := range nodes {
		if n.name == info.Cluster.Leader {
			victim = n
		}
	}
	if victim == nil {
		t.Fatalf("DELIVERIES leader %q is none of the nodes", info.Cluster.Leader)
	}
	victim.kill(t)
	before := len(rig.rcv.delivered())
	waitFor(t, 90*time.Second, "deliveries with the node down", func() bool { return len(rig.rcv.delivered()) >= before+20 })
	victim.start(t)
	natstest.Eventually(t, 90*time.Second, func() error { return replicasCurrent(ctx, rig.admin.js, contract.StreamDeliveries) })
	wait()
	rig.verify("R3 cluster, DELIVERIES leader SIGKILLed and restarted", 4*time.Minute, allTicks(events))
}

// Fault: the receiver answers 500 for a while, then hangs (holds requests
// until the dispatcher's timeout), then recovers. Retries, the breaker and
// the timeout carry every pair through; nothing is dead-lettered.
func TestFaultReceiverFailsHangsRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs five processes; run without -short")
	}
	t.Parallel()
	p := startSingle(t)
	rig := newFaultRig(t, p.url(), nil, 0)
	rig.start("engine", "engine", nil)
	rig.start("dispatcher", "dispatcher", map[string]string{
		"HERALD_DISPATCHER_WORKERS": "8", "HERALD_DISPATCHER_TIMEOUT": "1s",
		// Enough attempts, a second or two apart, to outlast the outage.
		"HERALD_DISPATCHER_SCHEDULE":         "0,1s,1s,1s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s",
		"HERALD_DISPATCHER_BREAKER_FAILURES": "5", "HERALD_DISPATCHER_BREAKER_COOLDOWN": "2s",
	})
	rig.subscribe("fault", "fault.*")

	const events = 150
	wait := rig.ingestInBackground("fault", ticks("flaky", events, 5), 100*time.Millisecond)
	waitFor(t, 60*time.Second, "10 deliveries", func() bool { return len(rig.rcv.delivered()) >= 10 })
	rig.rcv.mode.Store(answer500)
	waitFor(t, 60*time.Second, "10 POSTs answered 500", func() bool { return rig.rcv.seen(answer500) >= 10 })
	rig.rcv.mode.Store(answerHang)
	waitFor(t, 60*time.Second, "4 POSTs held until timeout", func() bool { return rig.rcv.seen(answerHang) >= 4 })
	rig.rcv.mode.Store(answerOK)
	wait()
	rig.verify(fmt.Sprintf("receiver 500 (%d POSTs), then hanging (%d POSTs), then recovered", rig.rcv.seen(answer500), rig.rcv.seen(answerHang)),
		3*time.Minute, allTicks(events))
}

// Fault: the engine is killed while operations have deadlines pending.
// While it is down, results arrive for half of them and every deadline
// passes. The restarted engine ends each operation exactly once: those
// without a result time out; those with one succeed, or (when the deadline
// timer is handled first) time out and then report the late success.
func TestFaultEngineRestartWithPendingDeadlines(t *testing.T) {
	if testing.Short() {
		t.Skip("runs five processes; run without -short")
	}
	t.Parallel()
	p := startSingle(t)
	rig := newFaultRig(t, p.url(), nil, 0)
	// Long enough that no deadline passes before the kill on a slow machine.
	engineEnv := map[string]string{"HERALD_ENGINE_DEADLINE_OVERRIDE": "20s"}
	engine := rig.start("engine", "engine", engineEnv)
	rig.start("dispatcher", "dispatcher", nil)
	rig.subscribe("fault", "operation.*")

	const ops = 30
	proto := func(i int) string { return fmt.Sprintf("0f8e2f4c-5a36-4a43-9d3b-%012d", i) }
	op := func(id, typ string, data map[string]any) map[string]any {
		return map[string]any{"specversion": "1.0", "id": id, "source": "urn:fault:router", "type": typ, "data": data}
	}
	var requests, results []map[string]any
	for i := range ops {
		requests = append(requests, op(fmt.Sprintf("req-%d", i), "device.operation.requested",
			map[string]any{"protocolo": proto(i), "router_id": fmt.Sprintf("RTR-%d", i), "operation": "reboot"}))
		if i%2 == 0 {
			results = append(results, op(fmt.Sprintf("res-%d", i), "device.operation.result",
				map[string]any{"protocolo": proto(i), "router_id": fmt.Sprintf("RTR-%d", i), "status": "success"}))
		}
	}
	rig.ingestInBackground("fault", [][]map[string]any{requests[:ops/2], requests[ops/2:]}, 0)()
	count := func(typ string) int {
		n := 0
		for _, note := range rig.rcv.delivered() {
			if note.Type == typ {
				n++
			}
		}
		return n
	}
	waitFor(t, 60*time.Second, "every operation.requested delivered", func() bool { return count("operation.requested") == ops })
	engine.kill(t)
	rig.ingestInBackground("fault", [][]map[string]any{results}, 0)()

	// Every deadline passes with the engine down: its timer messages wait
	// on TIMERS for the engine-timers durable.
	ctx := context.Background()
	natstest.Eventually(t, 60*time.Second, func() error {
		c, err := rig.admin.js.Consumer(ctx, contract.StreamTimers, contract.ConsumerEngineTimers)
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending < ops {
			return fmt.Errorf("%d deadline timers fired, want %d", info.NumPending, ops)
		}
		return nil
	})
	if n := count("operation.timed_out") + count("operation.succeeded"); n != 0 {
		t.Fatalf("%d operations ended before the restart: the deadlines were not pending at the kill", n)
	}
	rig.start("engine-restarted", "engine", engineEnv)

	rig.verify("engine SIGKILLed with 30 deadlines pending, restarted after they passed", 3*time.Minute, func(got map[string]note) error {
		type life struct{ requested, timedOut, succeeded, late int }
		lives := map[string]*life{}
		for _, n := range got {
			var d struct {
				Protocol string `json:"protocol"`
				Late     bool   `json:"late"`
			}
			if err := json.Unmarshal(n.Data, &d); err != nil {
				return err
			}
			l := lives[d.Protocol]
			if l == nil {
				l = &life{}
				lives[d.Protocol] = l
			}
			switch {
			case n.Type == "operation.requested":
				l.requested++
			case n.Type == "operation.timed_out":
				l.timedOut++
			case n.Type == "operation.succeeded" && d.Late:
				l.late++
			case n.Type == "operation.succeeded":
				l.succeeded++
			default:
				return fmt.Errorf("unexpected %s for %s", n.Type, d.Protocol)
			}
		}
		for i := range ops {
			l := lives[proto(i)]
			if l == nil {
				return fmt.Errorf("operation %d: nothing delivered", i)
			}
			want := []string{"requested 1 timed_out 1 succeeded 0 late 0"}
			if i%2 == 0 {
				want = []string{"requested 1 timed_out 0 succeeded 1 late 0", "requested 1 timed_out 1 succeeded 0 late 1"}
			}
			have := fmt.Sprintf("requested %d timed_out %d succeeded %d late %d", l.requested, l.timedOut, l.succeeded, l.late)
			if have != want[0] && (len(want) == 1 || have != want[1]) {
				return fmt.Errorf("operation %d: %s, want %s", i, have, strings.Join(want, " or "))
			}
		}
		return nil
	})
}

// startCluster runs three nodes from cluster.conf.
func startCluster(t testing.TB) []*proc {
	t.Helper()
	nodes := make([]*proc, 3)
	routes := make([]int, 3)
	for i := range nodes {
		nodes[i] = &proc{name: fmt.Sprintf("nats-%d", i+1), port: freePort(t), mport: freePort(t)}
		routes[i] = freePort(t)
	}
	for i, p := range nodes {
		dir := t.TempDir()
		repl := []string{
			"store_dir: /data", "store_dir: " + filepath.Join(dir, "data"),
			"\nport: 4222", fmt.Sprintf("\nport: %d", p.port),
			"http_port: 8222", fmt.Sprintf("http_port: %d", p.mport),
			"  port: 6222", fmt.Sprintf("  port: %d", routes[i]),
		}
		for j := range nodes {
			repl = append(repl, fmt.Sprintf("nats-%d:6222", j+1), fmt.Sprintf("127.0.0.1:%d", routes[j]))
		}
		p.conf = writeConf(t, dir, "cluster.conf", repl...)
	}
	for _, p := range nodes {
		p.start(t)
		t.Cleanup(func() { p.kill(t) })
	}
	return nodes
}

// replicasCurrent is nil once stream has a leader and every replica is
// online and current.
func replicasCurrent(ctx context.Context, js jetstream.JetStream, name string) error {
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return fmt.Errorf("%s: no leader", name)
	}
	if n := 1 + len(info.Cluster.Replicas); n != 3 {
		return fmt.Errorf("%s: %d replicas, want 3", name, n)
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current || r.Offline {
			return fmt.Errorf("%s: replica %s not current (offline %v)", name, r.Name, r.Offline)
		}
	}
	return nil
}

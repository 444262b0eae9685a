package deploytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// serverBin is the nats-server built from this module's go.mod version.
var serverBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "herald-natsconf-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	serverBin = filepath.Join(dir, "nats-server")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", serverBin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build nats-server: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

var users = []string{"sys", "collector", "engine", "dispatcher", "registry", "audit", "admin"}

func password(user string) string { return user + "-dev-password" }

// proc is one nats-server process started from a config file.
type proc struct {
	conf, name  string
	port, mport int
	mu          sync.Mutex
	cmd         *exec.Cmd
	done        chan struct{}
}

func (p *proc) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", p.port) }

// start runs the server and waits until it accepts client connections.
// The client port is the server's identity and stays; the monitoring port
// is not, and a restart that finds it taken meanwhile (another test's
// outgoing connection got it from the ephemeral range) moves it.
func (p *proc) start(t testing.TB) {
	t.Helper()
	for try := 0; ; try++ {
		log, exited := p.startOnce(t)
		if !exited {
			return
		}
		b, _ := os.ReadFile(log)
		if try < 3 && strings.Contains(string(b), "can't listen to the monitor port") {
			conf, err := os.ReadFile(p.conf)
			if err != nil {
				t.Fatal(err)
			}
			old := fmt.Sprintf("http_port: %d", p.mport)
			p.mport = freePort(t)
			if err := os.WriteFile(p.conf, []byte(strings.Replace(string(conf), old, fmt.Sprintf("http_port: %d", p.mport), 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Fatalf("%s exited:\n%s", p.name, b)
	}
}

// startOnce runs the server once: it returns the server's log and whether
// it exited before accepting connections.
func (p *proc) startOnce(t testing.TB) (logName string, exited bool) {
	t.Helper()
	cmd := exec.Command(serverBin, "-c", p.conf)
	cmd.Env = os.Environ()
	for _, u := range users {
		cmd.Env = append(cmd.Env, strings.ToUpper(u)+"_PASSWORD="+password(u))
	}
	cmd.Env = append(cmd.Env, "NATS_SERVER_NAME="+p.name)
	log, err := os.Create(p.conf + "." + fmt.Sprint(time.Now().UnixNano()) + ".log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	natstest.Eventually(t, 20*time.Second, func() error {
		select {
		case <-done:
			exited = true
			return nil
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return log.Name(), exited
}

// kill stops the server at once (SIGKILL), as a crash would.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit after SIGKILL", p.name)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeConf copies src into dir with accounts.conf beside it (the include
// is relative) and applies the replacements, failing if one does not apply,
// so that a renamed setting cannot slip through untested.
func writeConf(t testing.TB, dir, src string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(natsFile(src))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i < len(repl); i += 2 {
		if !strings.Contains(s, repl[i]) {
			t.Fatalf("%s lacks %q", src, repl[i])
		}
		s = strings.ReplaceAll(s, repl[i], repl[i+1])
	}
	acc, err := os.ReadFile(natsFile("accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.conf"), acc, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(out, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

func startSingle(t testing.TB, extra ...string) *proc {
	dir := t.TempDir()
	p := &proc{name: "herald-nats", port: freePort(t), mport: freePort(t)}
	p.conf = writeConf(t, dir, "single.conf", append([]string{
		"store_dir: /data", "store_dir: " + filepath.Join(dir, "data"),
		"\nport: 4222", fmt.Sprintf("\nport: %d", p.port),
		"http_port: 8222", fmt.Sprintf("http_port: %d", p.mport)}, extra...)...)
	p.start(t)
	t.Cleanup(func() { p.kill(t) })
	return p
}

// client is a connection as one user that records async errors, which is
// how the server reports a refused publish.
type client struct {
	nc *nats.Conn
	js jetstream.JetStream
	mu sync.Mutex
	// errs are the async errors seen, e.g. permissions violations.
	errs []error
}

func connect(t testing.TB, url, user string) *client {
	t.Helper()
	c := &client{}
	nc, err := nats.Connect(url, nats.UserInfo(user, password(user)), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *client) sawViolation(subject string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, err := range c.errs {
		if strings.Contains(err.Error(), "Permissions Violation") && strings.Contains(err.Error(), `"`+subject+`"`) {
			return true
		}
	}
	return false
}

func ce(id, typ string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("natsconf-test")
	e.SetType(typ)
	e.SetExtension("tenant", "acme")
	_ = e.SetData(event.ApplicationJSON, map[string]string{"id": id})
	return e
}

// refused asserts that user cannot store a message on subject: the
// JetStream publish fails, the server reports a permissions violation, and
// the stream (checked by admin) holds nothing on that subject.
func refused(t testing.TB, c *client, admin *client, stream, subject string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := bus.PublishEvent(ctx, c.js, subject, "refused-"+subject, ce("refused", "x")); err == nil {
		t.Errorf("publish to %s was acknowledged, want refused", subject)
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		if !c.sawViolation(subject) {
			return fmt.Errorf("no permissions violation reported for %s", subject)
		}
		return nil
	})
	s, err := admin.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(context.Background(), subject); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("%s holds a message on %s (err %v), want none", stream, subject, err)
	}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Each service user can do exactly what its service does (ensure its
// streams, buckets and durables, publish its subjects, consume and ack) and
// cannot publish upstream.
func TestSingleNodePermissions(t *testing.T) {
	t.Parallel()
	p := startSingle(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topo := contract.DefaultTopology
	admin := connect(t, p.url(), "admin")

	// registry: CHANGES, tenants, subscriptions, api-keys.
	reg := connect(t, p.url(), "registry")
	must(t, "registry streams", bus.EnsureStreams(ctx, reg.js, contract.ChangesStream(topo)))
	tenants, err := bus.EnsureBucket(ctx, reg.js, contract.Bucket(contract.BucketTenants, topo))
	must(t, "registry tenants", err)
	subs, err := bus.EnsureBucket(ctx, reg.js, contract.Bucket(contract.BucketSubscriptions, topo))
	must(t, "registry subscriptions", err)
	_, err = tenants.Put(ctx, "acme", []byte(`{"id":"acme"}`))
	must(t, "registry put tenant", err)
	_, err = subs.Put(ctx, "acme.sub-1", []byte(`{"id":"sub-1"}`))
	must(t, "registry put subscription", err)
	_, err = bus.PublishEvent(ctx, reg.js, contract.ChangeSubject("acme", "tenant"), "chg-1", ce("chg-1", "herald.change.tenant.created"))
	must(t, "registry publish change", err)

	// collector: EVENTS, api-keys, reads tenants.
	col := connect(t, p.url(), "collector")
	must(t, "collector streams", bus.EnsureStreams(ctx, col.js, contract.EventsStream(topo)))
	_, err = bus.EnsureBucket(ctx, col.js, contract.Bucket(contract.BucketAPIKeys, topo))
	must(t, "collector api-keys", err)
	ckv, err := bus.WaitForBucket(ctx, col.js, contract.BucketTenants)
	must(t, "collector tenants", err)
	_, err = ckv.Get(ctx, "acme")
	must(t, "collector get tenant", err)
	_, err = bus.PublishEvent(ctx, col.js, contract.EventSubject("acme", "vmanage.alarm"), "ev-1", ce("ev-1", "vmanage.alarm"))
	must(t, "collector publish event", err)
	sub, err := col.nc.QueueSubscribe(contract.IngestWildcard, "collector", func(m *nats.Msg) { _ = m.Respond([]byte("ok")) })
	must(t, "collector ingest subscribe", err)
	defer sub.Unsubscribe()
	must(t, "flush", col.nc.Flush())
	if _, err := admin.nc.Request(contract.IngestSubject("acme"), []byte("{}"), 5*time.Second); err != nil {
		t.Errorf("ingest request/reply via collector: %v", err)
	}

	// engine: consumes EVENTS, writes NOTIFICATIONS, TIMERS, alerts, operations.
	eng := connect(t, p.url(), "engine")
	must(t, "engine streams", bus.EnsureStreams(ctx, eng.js, contract.NotificationsStream(topo), contract.TimersStream(topo)))
	alerts, err := bus.EnsureBucket(ctx, eng.js, contract.Bucket(contract.BucketAlerts, topo))
	must(t, "engine alerts", err)
	_, err = alerts.Create(ctx, "acme.k1", []byte("{}"))
	must(t, "engine alert create", err)
	_, err = bus.EnsureBucket(ctx, eng.js, contract.Bucket(contract.BucketOperations, topo))
	must(t, "engine operations", err)
	ekv, err := bus.WaitForBucket(ctx, eng.js, contract.BucketTenants)
	must(t, "engine tenants", err)
	_, err = ekv.Get(ctx, "acme")
	must(t, "engine get tenant", err)
	consumeOne(t, ctx, eng, contract.StreamEvents, contract.EngineConsumer())
	_, err = bus.PublishEvent(ctx, eng.js, contract.NotificationSubject("acme", "alert.opened"), "n-1", ce("n-1", "alert.opened"))
	must(t, "engine publish notification", err)
	_, err = bus.PublishEvent(ctx, eng.js, contract.TimerScheduleSubject("acme", "operation", "u1"), "tm-1", ce("tm-1", "herald.timer"),
		jetstream.WithScheduleAt(time.Now().Add(time.Hour)), jetstream.WithScheduleTarget(contract.TimerSubject("acme", "operation", "u1")))
	must(t, "engine schedule timer", err)
	refused(t, eng, admin, contract.StreamEvents, contract.EventSubject("acme", "x"))

	// dispatcher: plans NOTIFICATIONS into DELIVERIES, records ATTEMPTS.
	dis := connect(t, p.url(), "dispatcher")
	must(t, "dispatcher streams", bus.EnsureStreams(ctx, dis.js, contract.DeliveriesStream(topo), contract.AttemptsStream(topo)))
	for _, b := range []string{contract.BucketDeliveryState, contract.BucketEndpointHealth} {
		_, err = bus.EnsureBucket(ctx, dis.js, contract.Bucket(b, topo))
		must(t, "dispatcher "+b, err)
	}
	dsubs, err := bus.WaitForBucket(ctx, dis.js, contract.BucketSubscriptions)
	must(t, "dispatcher subscriptions", err)
	w, err := dsubs.WatchAll(ctx)
	must(t, "dispatcher watch", err)
	select {
	case e := <-w.Updates():
		if e == nil || e.Key() != "acme.sub-1" {
			t.Errorf("watch gave %v, want acme.sub-1", e)
		}
	case <-ctx.Done():
		t.Fatal("dispatcher watch: no update")
	}
	_ = w.Stop()
	consumeOne(t, ctx, dis, contract.StreamNotifications, contract.PlannerConsumer())
	_, err = bus.PublishEvent(ctx, dis.js, contract.DeliverySubject("acme", "sub-1"), "d-1", ce("d-1", "alert.opened"))
	must(t, "dispatcher publish delivery", err)
	consumeOne(t, ctx, dis, contract.StreamDeliveries, contract.DelivererConsumer())
	_, err = bus.PublishEvent(ctx, dis.js, contract.AttemptSubject("acme", "sub-1"), "a-1", ce("a-1", "herald.attempt"))
	must(t, "dispatcher publish attempt", err)
	_, err = bus.PublishEvent(ctx, dis.js, contract.NotificationSubject("acme", "subscription.disabled"), "n-2", ce("n-2", "subscription.disabled"))
	must(t, "dispatcher publish subscription.disabled", err)
	refused(t, dis, admin, contract.StreamEvents, contract.EventSubject("acme", "x"))
	refused(t, dis, admin, contract.StreamNotifications, contract.NotificationSubject("acme", "x"))

	// audit: reads the four streams and DEADLETTERS, writes only AUDIT
	// (and, like every consumer, DEADLETTERS).
	aud := connect(t, p.url(), "audit")
	must(t, "audit stream", bus.EnsureStreams(ctx, aud.js, contract.AuditStream(topo), contract.DeadLettersStream(topo)))
	for _, c := range []struct {
		user string
		cl   *client
	}{{"engine", eng}, {"dispatcher", dis}, {"audit", aud}} {
		_, err = bus.PublishEvent(ctx, c.cl.js, contract.DeadLetterSubject("acme", c.user), "dl-"+c.user, ce("dl-"+c.user, "herald.deadletter"))
		must(t, c.user+" sets a poison message aside", err)
	}
	_, err = bus.EnsureBucket(ctx, aud.js, contract.Bucket(contract.BucketAuditHeads, topo))
	must(t, "audit heads", err)
	for stream, cfg := range contract.AuditConsumers() {
		consumeOne(t, ctx, aud, stream, cfg)
	}
	_, err = bus.PublishEvent(ctx, aud.js, contract.AuditSubject("acme"), "au-1", ce("au-1", "herald.audit"))
	must(t, "audit publish", err)
	as, err := aud.js.Stream(ctx, contract.StreamAudit)
	must(t, "audit stream handle", err)
	_, err = as.GetLastMsgForSubject(ctx, contract.AuditSubject("acme"))
	must(t, "audit last record", err)
	oc, err := as.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	must(t, "audit ordered consumer", err)
	if _, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Errorf("audit ordered read: %v", err)
	}
	refused(t, aud, admin, contract.StreamEvents, contract.EventSubject("acme", "x"))
	refused(t, aud, admin, contract.StreamNotifications, contract.NotificationSubject("acme", "x"))
	refused(t, aud, admin, contract.StreamChanges, contract.ChangeSubject("acme", "x"))

	// registry and collector stay in their lanes too.
	refused(t, reg, admin, contract.StreamEvents, contract.EventSubject("acme", "x"))
	refused(t, col, admin, contract.StreamNotifications, contract.NotificationSubject("acme", "x"))

	// A service cannot take over another's durable.
	ctx2, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	if _, err := eng.js.CreateOrUpdateConsumer(ctx2, contract.StreamNotifications, contract.PlannerConsumer()); err == nil {
		t.Error("engine created the dispatcher's durable")
	}
}

// consumeOne ensures the durable, as its service does, and handles and
// acks one message through bus.Consume.
func consumeOne(t testing.TB, ctx context.Context, c *client, stream string, cfg jetstream.ConsumerConfig) {
	t.Helper()
	cons, err := bus.EnsureConsumer(ctx, c.js, stream, cfg)
	must(t, "ensure consumer "+cfg.Durable, err)
	got := make(chan struct{}, 1)
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(cctx, cons, func(context.Context, jetstream.Msg) error {
			select {
			case got <- struct{}{}:
			default:
			}
			return nil
		}, bus.ConsumeOptions{Consumer: cfg.Durable})
	}()
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatalf("%s consumed nothing", cfg.Durable)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("consume %s: %v", cfg.Durable, err)
	}
	natstest.Eventually(t, 10*time.Second, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		// Later messages may have been pulled and nak'ed on stop; the
		// first one must be acked.
		if info.AckFloor.Consumer == 0 {
			return fmt.Errorf("%s: nothing acknowledged (ack pending %d)", cfg.Durable, info.NumAckPending)
		}
		return nil
	})
}

func TestConfigsSyncAlways(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"single.conf", "cluster.conf"} {
		b, err := os.ReadFile(natsFile(f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "sync_interval: always") {
			t.Errorf("%s lacks sync_interval: always", f)
		}
	}
}

// The monitoring endpoint compose's health check uses answers.
func TestSingleNodeHealthz(t *testing.T) {
	t.Parallel()
	p := startSingle(t)
	natstest.Eventually(t, 20*time.Second, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", p.mport))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz %d", resp.StatusCode)
		}
		return nil
	})
}

package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/schemas"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/tenancy"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

const tenant = "acme"

// start runs an engine until the returned stop is called (or the test ends).
func start(t *testing.T, js jetstream.JetStream, cfg Config) (stop func()) {
	t.Helper()
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	if cfg.OperationDeadline == 0 {
		cfg.OperationDeadline = time.Hour
	}
	s, err := New(cfg, service.Deps{JS: js, Logger: slog.New(slog.DiscardHandler), Topology: contract.DefaultTopology})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	natstest.Eventually(t, 20*time.Second, s.Ready)
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func setup(t *testing.T) *natstest.Server {
	t.Helper()
	srv := natstest.Run(t)
	if err := bus.EnsureStreams(context.Background(), srv.JS, contract.EventsStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	return srv
}

type input struct {
	id, typ, action string
	data            any
}

// publish posts in as raw events, each twice and without Nats-Msg-Id, so the
// engine sees every input redelivered.
func publish(t *testing.T, js jetstream.JetStream, times int, ins ...input) {
	t.Helper()
	for _, in := range ins {
		e := event.New()
		e.SetID(in.id)
		e.SetSource("test/source")
		e.SetType(in.typ)
		e.SetTime(time.Now().UTC())
		e.SetExtension("tenant", tenant)
		if in.action != "" {
			e.SetExtension("action", in.action)
		}
		if err := e.SetData(event.ApplicationJSON, in.data); err != nil {
			t.Fatal(err)
		}
		for range times {
			if _, err := bus.PublishEvent(context.Background(), js, contract.EventSubject(tenant, in.typ), "", e); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// notifications reads every message of NOTIFICATIONS.
func notifications(t *testing.T, js jetstream.JetStream) []event.Event {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, contract.StreamNotifications)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		e, err := cenats.Decode(m.Header, m.Data)
		if err != nil {
			t.Fatal(err)
		}
		// Every notification of a type with a schema conforms to it.
		if schemas.Known(e.Type()) {
			if err := schemas.Validate(e.Type(), e.Data()); err != nil {
				t.Fatalf("%s %s: %v", e.Type(), e.ID(), err)
			}
		} else if strings.HasPrefix(e.Type(), "alert.") || strings.HasPrefix(e.Type(), "operation.") {
			t.Fatalf("no schema for %s", e.Type())
		}
		out = append(out, e)
	}
	return out
}

func ofType(es []event.Event, prefix string) []event.Event {
	var out []event.Event
	for _, e := range es {
		if strings.HasPrefix(e.Type(), prefix) {
			out = append(out, e)
		}
	}
	return out
}

func types(es []event.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Type())
	}
	return out
}

func waitTypes(t *testing.T, js jetstream.JetStream, prefix string, want ...string) []event.Event {
	t.Helper()
	var got []event.Event
	natstest.Eventually(t, 20*time.Second, func() error {
		got = ofType(notifications(t, js), prefix)
		if fmt.Sprint(types(got)) != fmt.Sprint(want) {
			return fmt.Errorf("%s notifications %v, want %v", prefix, types(got), want)
		}
		return nil
	})
	return got
}

func alarm(id string, active bool, devices ...string) input {
	var ds, vs []map[string]string
	for _, d := range devices {
		ds = append(ds, map[string]string{"system-ip": d})
		vs = append(vs, map[string]string{"system-ip": d, "host-name": "DC1-" + d})
	}
	return input{id: id, typ: typeVManageAlarm, data: map[string]any{
		"uuid": id, "rule_name_display": "System_Reboot_Issued", "severity": "Critical", "severity_number": 1,
		"active": active, "devices": ds, "values": vs, "message": "The device rebooted", "receive_time": 1579323421121,
	}}
}

func clcTrigger(id, state string) input {
	return input{id: id, typ: typeCLCAlert, data: map[string]any{
		"accountAlias": "DEMO", "serverName": "WA1DEMOSERVER01",
		"triggers": []map[string]any{{"metric": "cpu", "state": state, "duration": "00:05:00"}},
	}}
}

func alertData(t *testing.T, e event.Event) payload.Alert {
	t.Helper()
	var a payload.Alert
	if err := e.DataAs(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAlertLifecycleRedelivered: the vManage sample sequence (two devices
// reboot, then recover) and the clc alert-policy sequence, every input
// delivered twice, give opened, deteriorated and resolved exactly once.
func TestAlertLifecycleRedelivered(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	start(t, srv.JS, Config{})
	publish(t, srv.JS, 2,
		alarm("a1", true, "10.1.0.1"), alarm("a2", true, "10.1.0.2"))
	got := waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.deteriorated")
	publish(t, srv.JS, 2, alarm("a3", false, "10.1.0.1"), alarm("a4", false, "10.1.0.2"))
	got = waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.deteriorated", "alert.resolved")
	for i, e := range got {
		a := alertData(t, e)
		if e.Subject() != a.AlertID || a.AlertID != alertData(t, got[0]).AlertID || a.Sequence != uint64(i+1) {
			t.Errorf("notification %d: subject %q alertId %q sequence %d", i, e.Subject(), a.AlertID, a.Sequence)
		}
		if ext, _ := e.Extensions()["tenant"].(string); ext != tenant {
			t.Errorf("tenant extension %q", ext)
		}
	}
	if a := alertData(t, got[1]); fmt.Sprint(a.Resources) != "[10.1.0.1 10.1.0.2]" || a.Title != "System_Reboot_Issued" {
		t.Errorf("deteriorated data %+v", a)
	}

	// Workers handle one batch concurrently, so each step waits for the
	// previous one, as a real source's seconds-apart webhooks would.
	publish(t, srv.JS, 2, clcTrigger("c1", "triggered"), clcTrigger("c2", "triggered"))
	waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.deteriorated", "alert.resolved", "alert.opened")
	publish(t, srv.JS, 2, clcTrigger("c3", "notTriggered"))
	waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.deteriorated", "alert.resolved", "alert.opened", "alert.resolved")
}

// TestRestartMidAlert stops the engine after the alert opened; a new engine
// continues the same alert from KV.
func TestRestartMidAlert(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	stop := start(t, srv.JS, Config{})
	publish(t, srv.JS, 1, alarm("a1", true, "10.1.0.1"))
	waitTypes(t, srv.JS, "alert.", "alert.opened")
	stop()
	publish(t, srv.JS, 2, alarm("a1", true, "10.1.0.1"), alarm("a2", true, "10.1.0.2"), alarm("a3", false, "10.1.0.1", "10.1.0.2"))
	start(t, srv.JS, Config{Workers: 1})
	got := waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.deteriorated", "alert.resolved")
	if a, b := alertData(t, got[0]), alertData(t, got[2]); a.AlertID != b.AlertID || b.Sequence != 3 || b.State != payload.AlertStateResolved {
		t.Errorf("after restart: %+v, opened as %+v", b, a)
	}
}

// TestOperationTimesOutWhileStopped: the deadline passes while no engine
// runs; the restarted engine sends operation.timed_out once, and a late
// result is still reported.
func TestOperationTimesOutWhileStopped(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	const proto = "226bd188-35e8-450f-b40b-b0c5f279f562"
	stop := start(t, srv.JS, Config{DeadlineOverride: 2 * time.Second})
	publish(t, srv.JS, 2, input{id: "r1", typ: typeOpRequested, data: map[string]any{"protocolo": proto, "router_id": "RTR-42", "operation": "reboot"}})
	waitTypes(t, srv.JS, "operation.", "operation.requested")
	stop()
	// The server fires the schedule into TIMERS with no engine running.
	natstest.Eventually(t, 20*time.Second, func() error {
		st, err := srv.JS.Stream(context.Background(), contract.StreamTimers)
		if err != nil {
			return err
		}
		_, err = st.GetLastMsgForSubject(context.Background(), contract.TimerSubject(tenant, timerOperation, proto))
		return err
	})
	if n := len(ofType(notifications(t, srv.JS), "operation.timed_out")); n != 0 {
		t.Fatalf("%d timed_out with the engine stopped", n)
	}
	start(t, srv.JS, Config{DeadlineOverride: 2 * time.Second})
	start(t, srv.JS, Config{DeadlineOverride: 2 * time.Second}) // a second instance changes nothing
	got := waitTypes(t, srv.JS, "operation.", "operation.requested", "operation.timed_out")
	if got[1].Subject() != proto {
		t.Errorf("timed_out subject %q", got[1].Subject())
	}
	publish(t, srv.JS, 2, input{id: "x1", typ: typeOpResult, data: map[string]any{"protocolo": proto, "router_id": "RTR-42", "status": "success", "timestamp": "10:07:00"}})
	got = waitTypes(t, srv.JS, "operation.", "operation.requested", "operation.timed_out", "operation.succeeded")
	var op payload.Operation
	if err := got[2].DataAs(&op); err != nil || !op.Late || op.Protocol != proto || op.Sequence != 3 {
		t.Errorf("late result %+v (%v)", op, err)
	}
}

// TestOperationSucceedsBeforeDeadline: no timeout after a result.
func TestOperationSucceedsBeforeDeadline(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	start(t, srv.JS, Config{DeadlineOverride: 2 * time.Second})
	const proto = "0f8e2f4c-5a36-4a43-9d3b-1b7a4f7c2a10"
	publish(t, srv.JS, 1, input{id: "r1", typ: typeOpRequested, data: map[string]any{"protocolo": proto, "router_id": "RTR-7", "operation": "reboot"}})
	waitTypes(t, srv.JS, "operation.", "operation.requested")
	publish(t, srv.JS, 1, input{id: "x1", typ: typeOpResult, data: map[string]any{"protocolo": proto, "status": "failure"}})
	waitTypes(t, srv.JS, "operation.", "operation.requested", "operation.failed")
	// Wait for the timer to fire and be consumed, then check nothing followed.
	natstest.Eventually(t, 20*time.Second, func() error {
		c, err := srv.JS.Consumer(context.Background(), contract.StreamTimers, contract.ConsumerEngineTimers)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream == 0 || info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("timer not processed yet: %+v", info.AckFloor)
		}
		return nil
	})
	if got := types(ofType(notifications(t, srv.JS), "operation.")); fmt.Sprint(got) != "[operation.requested operation.failed]" {
		t.Errorf("got %v", got)
	}
}

// TestPassthroughAndResources covers unknown types and clc resources.
func TestPassthroughAndResources(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	start(t, srv.JS, Config{})
	publish(t, srv.JS, 2,
		input{id: "g1", typ: "shop.order.created", data: map[string]any{"order": 7}},
		input{id: "s1", typ: typeCLCServer, action: "created", data: map[string]any{"id": "WA1DEMOSERVER01", "name": "WA1DEMOSERVER01", "links": []map[string]string{{"rel": "self", "href": "/v2/servers/DEMO/WA1DEMOSERVER01"}}}},
		input{id: "s2", typ: typeCLCServer, action: "deleted", data: map[string]any{"accountAlias": "DEMO", "name": "WA1DEMOSERVER01"}},
		input{id: "u1", typ: typeCLCUser, action: "updated", data: map[string]any{"accountAlias": "DEMO", "userName": "demo@user.com", "status": "Active"}},
	)
	var got []event.Event
	natstest.Eventually(t, 20*time.Second, func() error {
		got = notifications(t, srv.JS)
		if len(got) != 4 {
			return fmt.Errorf("%d notifications: %v", len(got), types(got))
		}
		return nil
	})
	byType := map[string]event.Event{}
	for _, e := range got {
		byType[e.Type()] = e
	}
	if e := byType["shop.order.created"]; string(e.Data()) != `{"order":7}` || e.Extensions()["causationid"] != "g1" {
		t.Errorf("passthrough %v", e)
	}
	if e := byType["server.created"]; e.Subject() != "WA1DEMOSERVER01" || !strings.Contains(string(e.Data()), "links") {
		t.Errorf("server.created %v", e)
	}
	var id payload.ResourceIdentity
	if err := byType["server.deleted"].DataAs(&id); err != nil || id.ID != "WA1DEMOSERVER01" || id.Kind != "server" {
		t.Errorf("server.deleted %+v %v", id, err)
	}
	if e := byType["user.updated"]; e.Subject() != "demo@user.com" {
		t.Errorf("user.updated %v", e)
	}
}

// TestTenantSettings: NotifyImproved from the tenants bucket.
func TestTenantSettings(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	kv, err := bus.EnsureBucket(context.Background(), srv.JS, contract.Bucket(contract.BucketTenants, contract.DefaultTopology))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tenancy.Tenant{ID: tenant, Settings: tenancy.Settings{Alerts: tenancy.AlertSettings{NotifyImproved: true}}})
	if _, err := kv.Put(context.Background(), tenant, b); err != nil {
		t.Fatal(err)
	}
	start(t, srv.JS, Config{})
	publish(t, srv.JS, 1, alarm("a1", true, "10.1.0.1", "10.1.0.2"))
	waitTypes(t, srv.JS, "alert.", "alert.opened")
	publish(t, srv.JS, 1, alarm("a2", false, "10.1.0.1"))
	waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.improved")
}

// summary reduces notifications to what is independent of processing order
// for the inputs of TestTwoInstances: (type, key, sequence, #resources).
func summary(t *testing.T, es []event.Event) []string {
	var out []string
	for _, e := range es {
		if strings.HasPrefix(e.Type(), "alert.") {
			a := alertData(t, e)
			out = append(out, fmt.Sprint(e.Type(), " ", a.Key, " ", a.Sequence, " ", len(a.Resources)))
		} else {
			out = append(out, e.Type()+" "+e.ID())
		}
	}
	sort.Strings(out)
	return out
}

// TestTwoInstances: one shuffled sequence (alerts gaining devices, passthrough
// events), each input twice, gives the same notifications with one engine
// instance as with two instances of four workers each on one consumer.
func TestTwoInstances(t *testing.T) {
	t.Parallel()
	var ins []input
	for a := range 10 {
		for d := range 8 {
			in := alarm(fmt.Sprint("a", a, "-", d), true, fmt.Sprint("10.", a, ".0.", d))
			in.data.(map[string]any)["rule_name_display"] = fmt.Sprint("rule-", a)
			ins = append(ins, in)
		}
	}
	for i := range 20 {
		ins = append(ins, input{id: fmt.Sprint("p", i), typ: "app.thing.happened", data: map[string]int{"n": i}})
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ins), func(i, j int) { ins[i], ins[j] = ins[j], ins[i] })
	want := 10*8 + 20

	run := func(instances int) []string {
		srv := setup(t)
		for range instances {
			start(t, srv.JS, Config{Workers: 4})
		}
		publish(t, srv.JS, 2, ins...)
		var got []event.Event
		natstest.Eventually(t, 30*time.Second, func() error {
			got = notifications(t, srv.JS)
			if len(got) != want {
				return fmt.Errorf("%d notifications, want %d", len(got), want)
			}
			return nil
		})
		return summary(t, got)
	}
	one, two := run(1), run(2)
	if !slices.Equal(one, two) {
		t.Errorf("one instance:\n%v\ntwo instances:\n%v", one, two)
	}
	opened := 0
	for _, s := range one {
		if strings.HasPrefix(s, "alert.opened") {
			opened++
		}
	}
	if opened != 10 {
		t.Errorf("%d alerts opened, want 10", opened)
	}
}

// TestReminders: with a 1s reminder interval, an open alert gets numbered
// reminders, each once; after the resolve no more arrive.
func TestReminders(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	kv, err := bus.EnsureBucket(context.Background(), srv.JS, contract.Bucket(contract.BucketTenants, contract.DefaultTopology))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tenancy.Tenant{ID: tenant, Settings: tenancy.Settings{Alerts: tenancy.AlertSettings{ReminderInterval: tenancy.Duration(time.Second)}}})
	if _, err := kv.Put(context.Background(), tenant, b); err != nil {
		t.Fatal(err)
	}
	start(t, srv.JS, Config{})
	start(t, srv.JS, Config{})
	publish(t, srv.JS, 2, alarm("a1", true, "10.1.0.1"))
	waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.reminder", "alert.reminder")
	publish(t, srv.JS, 1, alarm("a2", false, "10.1.0.1"))
	var got []event.Event
	natstest.Eventually(t, 20*time.Second, func() error {
		got = ofType(notifications(t, srv.JS), "alert.")
		if got[len(got)-1].Type() != "alert.resolved" {
			return fmt.Errorf("last is %s", got[len(got)-1].Type())
		}
		return nil
	})
	for i, e := range got[1 : len(got)-1] {
		if a := alertData(t, e); e.Type() != "alert.reminder" || a.Reminder != i+1 || a.Sequence != uint64(i+2) {
			t.Errorf("notification %d: %s reminder %d sequence %d", i+1, e.Type(), a.Reminder, a.Sequence)
		}
	}
	// A reminder timer armed before the resolve finds the alert resolved.
	n := len(notifications(t, srv.JS))
	natstest.Eventually(t, 20*time.Second, func() error {
		c, err := srv.JS.Consumer(context.Background(), contract.StreamTimers, contract.ConsumerEngineTimers)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		st, _ := srv.JS.Stream(context.Background(), contract.StreamTimers)
		sinfo, _ := st.Info(context.Background(), jetstream.WithSubjectFilter("timers.>"))
		if info.Delivered.Stream < sinfo.State.LastSeq || info.NumAckPending > 0 || info.NumPending > 0 {
			return fmt.Errorf("timers pending")
		}
		return nil
	})
	if m := len(notifications(t, srv.JS)); m != n {
		t.Errorf("%d notifications after the resolve", m-n)
	}
}

// TestFlapDamping: with a 2s flap window, a recovery followed by a new
// failure within the window sends nothing; the final recovery is resolved
// once, after the window.
func TestFlapDamping(t *testing.T) {
	t.Parallel()
	srv := setup(t)
	kv, err := bus.EnsureBucket(context.Background(), srv.JS, contract.Bucket(contract.BucketTenants, contract.DefaultTopology))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tenancy.Tenant{ID: tenant, Settings: tenancy.Settings{Alerts: tenancy.AlertSettings{FlapWindow: tenancy.Duration(30 * time.Second)}}})
	if _, err := kv.Put(context.Background(), tenant, b); err != nil {
		t.Fatal(err)
	}
	start(t, srv.JS, Config{Workers: 1})
	publish(t, srv.JS, 1, alarm("a1", true, "10.1.0.1"))
	waitTypes(t, srv.JS, "alert.", "alert.opened")
	publish(t, srv.JS, 2, alarm("a2", false, "10.1.0.1"), alarm("a3", true, "10.1.0.1"))
	drained(t, srv.JS, contract.StreamEvents, contract.ConsumerEngine)
	// Shorten the window for the final recovery, so the test need not wait 30s.
	b, _ = json.Marshal(tenancy.Tenant{ID: tenant, Settings: tenancy.Settings{Alerts: tenancy.AlertSettings{FlapWindow: tenancy.Duration(time.Second)}}})
	if _, err := kv.Put(context.Background(), tenant, b); err != nil {
		t.Fatal(err)
	}
	publish(t, srv.JS, 2, alarm("a4", false, "10.1.0.1"))
	got := waitTypes(t, srv.JS, "alert.", "alert.opened", "alert.resolved")
	if a := alertData(t, got[1]); a.AlertID != alertData(t, got[0]).AlertID || a.Sequence != 2 {
		t.Errorf("resolved %+v", a)
	}
}

// drained waits until a durable consumer has acknowledged everything.
func drained(t *testing.T, js jetstream.JetStream, stream, consumer string) {
	t.Helper()
	natstest.Eventually(t, 20*time.Second, func() error {
		c, err := js.Consumer(context.Background(), stream, consumer)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("%s: %d pending, %d unacknowledged", consumer, info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

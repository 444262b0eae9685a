package alertfsm

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 1, 18, 5, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func vmanage(id string, min int, active bool, devices ...string) Signal {
	return Signal{EventID: id, Time: at(min), Key: "vmanage.alarm/System_Reboot_Issued",
		Title: "System_Reboot_Issued", Text: "The device rebooted", Resources: devices,
		Active: active, Severity: "Critical", Rank: 5}
}

func clc(id string, min int, state, metric string) Signal {
	return Signal{EventID: id, Time: at(min), Key: "clc.alert/demo/wa1demoserver01/" + metric,
		Title: metric + " alert on WA1DEMOSERVER01", AccountID: "DEMO",
		Resources: []string{"WA1DEMOSERVER01"}, Active: state == "triggered", Rank: 1}
}

// TestAlertGolden runs signal sequences through the machine, each input
// delivered twice, and compares the notifications with testdata/*.golden.
func TestAlertGolden(t *testing.T) {
	opts := Options{Tenant: "acme", ProjectID: "acme", AccountID: "acme-root"}
	improved := opts
	improved.NotifyImproved = true
	minor := func(s Signal) Signal { s.Severity, s.Rank = "Minor", 2; return s }
	for _, tc := range []struct {
		name  string
		opts  Options
		in    []Signal
		types []string
	}{
		{"vmanage-two-devices-reboot", opts, []Signal{
			vmanage("e1", 0, true, "10.1.0.1"),
			vmanage("e2", 1, true, "10.1.0.2"),
			vmanage("e3", 2, true, "10.1.0.1"), // same device again: no news
			vmanage("e4", 5, false, "10.1.0.1"),
			vmanage("e5", 6, false, "10.1.0.2"),
			vmanage("e6", 7, false, "10.1.0.2"), // already recovered
		}, []string{"alert.opened", "alert.deteriorated", "alert.resolved"}},
		{"vmanage-partial-recovery-opt-in", improved, []Signal{
			vmanage("e1", 0, true, "10.1.0.1", "10.1.0.2"),
			vmanage("e2", 5, false, "10.1.0.1"),
			vmanage("e3", 6, false, "10.1.0.2"),
		}, []string{"alert.opened", "alert.improved", "alert.resolved"}},
		{"severity-rise-and-fall", opts, []Signal{
			minor(vmanage("e1", 0, true, "10.1.0.1")),
			vmanage("e2", 1, true, "10.1.0.1"),        // Minor -> Critical
			minor(vmanage("e3", 2, true, "10.1.0.1")), // back to Minor: silent
			vmanage("e4", 3, false, "10.1.0.1"),
		}, []string{"alert.opened", "alert.deteriorated", "alert.resolved"}},
		{"clc-triggered-nottriggered", opts, []Signal{
			clc("c0", 0, "notTriggered", "cpu"), // recovery before any trigger
			clc("c1", 1, "triggered", "cpu"),
			clc("c2", 2, "triggered", "cpu"),
			clc("c3", 7, "notTriggered", "cpu"),
			clc("c4", 9, "triggered", "cpu"), // a new life, a new alertId
			clc("c5", 12, "notTriggered", "cpu"),
		}, []string{"alert.opened", "alert.resolved", "alert.opened", "alert.resolved"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a Alert
			var got []Notification
			for _, s := range tc.in {
				for range 2 { // the second delivery must change nothing
					_, out := Apply(&a, s, tc.opts)
					got = append(got, out...)
				}
			}
			var types []string
			for _, n := range got {
				types = append(types, n.Type)
			}
			if fmt.Sprint(types) != fmt.Sprint(tc.types) {
				t.Fatalf("types = %v, want %v", types, tc.types)
			}
			checkGolden(t, tc.name, got)
		})
	}
}

func TestAlertIDsPerLife(t *testing.T) {
	var a Alert
	o := Options{Tenant: "acme"}
	var ids []string
	for i, s := range []Signal{clc("a", 0, "triggered", "cpu"), clc("b", 1, "notTriggered", "cpu"), clc("c", 2, "triggered", "cpu")} {
		_, out := Apply(&a, s, o)
		if len(out) != 1 {
			t.Fatalf("input %d: %d notifications", i, len(out))
		}
		ids = append(ids, out[0].Subject)
	}
	if ids[0] != ids[1] || ids[0] == ids[2] {
		t.Fatalf("alert ids %v: want one id per life", ids)
	}
}

func TestOperationGolden(t *testing.T) {
	dl := at(60)
	req := Request{EventID: "r1", Time: at(0), Protocol: "8c1e0b8a-1f7d-4d0b-9c55-3c1f0c8d9e21", Device: "RTR-42", Kind: "reboot", Deadline: dl}
	res := Result{EventID: "x1", Time: at(2), Protocol: req.Protocol, Device: "RTR-42", Success: true, Status: "success"}
	late := res
	late.Time, late.Success, late.Status = at(70), false, "failure"
	for _, tc := range []struct {
		name  string
		steps []func(*Operation) []Notification
		types []string
	}{
		{"operation-succeeds", []func(*Operation) []Notification{
			func(o *Operation) []Notification { _, n := ApplyRequest(o, req, "acme"); return n },
			func(o *Operation) []Notification { _, n := ApplyResult(o, res, "acme"); return n },
			func(o *Operation) []Notification { _, n := Expire(o, "acme"); return n },
		}, []string{"operation.requested", "operation.succeeded"}},
		{"operation-times-out-then-late-result", []func(*Operation) []Notification{
			func(o *Operation) []Notification { _, n := ApplyRequest(o, req, "acme"); return n },
			func(o *Operation) []Notification { _, n := Expire(o, "acme"); return n },
			func(o *Operation) []Notification { _, n := ApplyResult(o, late, "acme"); return n },
		}, []string{"operation.requested", "operation.timed_out", "operation.failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var op Operation
			var got []Notification
			for _, step := range tc.steps {
				for range 2 {
					got = append(got, step(&op)...)
				}
			}
			var types []string
			for _, n := range got {
				types = append(types, n.Type)
			}
			if fmt.Sprint(types) != fmt.Sprint(tc.types) {
				t.Fatalf("types = %v, want %v", types, tc.types)
			}
			checkGolden(t, tc.name, got)
		})
	}
}

func checkGolden(t *testing.T, name string, got []Notification) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("notifications differ from %s (run with -update after checking):\n%s", path, b)
	}
}

// BenchmarkTransitions measures opened+resolved pairs on distinct alerts.
func BenchmarkTransitions(b *testing.B) {
	o := Options{Tenant: "acme"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		var a Alert
		id := fmt.Sprint(i)
		Apply(&a, vmanage("o"+id, 0, true, "10.1.0.1"), o)
		Apply(&a, vmanage("r"+id, 1, false, "10.1.0.1"), o)
	}
	b.ReportMetric(2*float64(b.N)/b.Elapsed().Seconds(), "transitions/s")
}

// BenchmarkOpenAlerts holds 100k open alerts in memory and reports the heap
// per alert, pending notification included.
func BenchmarkOpenAlerts(b *testing.B) {
	const n = 100_000
	o := Options{Tenant: "acme"}
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		alerts := make(map[string]*Alert, n)
		for i := range n {
			s := vmanage(fmt.Sprint("e", i), 0, true, fmt.Sprint("10.1.", i/256, ".", i%256))
			s.Key = fmt.Sprint("vmanage.alarm/rule-", i)
			a := &Alert{}
			_, a.Pending = Apply(a, s, o)
			alerts[s.Key] = a
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/alert")
		a := alerts["vmanage.alarm/rule-0"]
		a.Pending = nil
		rec, _ := json.Marshal(a)
		b.ReportMetric(float64(len(rec)), "kv-bytes/alert")
		runtime.KeepAlive(alerts)
	}
}

func TestReminders(t *testing.T) {
	var a Alert
	o := Options{Tenant: "acme"}
	_, out := Apply(&a, vmanage("e1", 0, true, "10.1.0.1"), o)
	id := out[0].Subject
	var got []string
	for _, step := range []struct {
		id string
		n  int
	}{{id, 1}, {id, 1}, {"other-life", 2}, {id, 2}} {
		_, out := Remind(&a, step.id, step.n, at(step.n*240), o)
		for _, n := range out {
			got = append(got, n.Type)
		}
	}
	Apply(&a, vmanage("e2", 500, false, "10.1.0.1"), o)
	if _, out := Remind(&a, id, 3, at(720), o); len(out) != 0 {
		t.Errorf("reminder after resolve: %v", out)
	}
	if fmt.Sprint(got) != "[alert.reminder alert.reminder]" {
		t.Errorf("reminders %v", got)
	}
}

func TestFlapDamping(t *testing.T) {
	o := Options{Tenant: "acme", FlapWindow: time.Minute}
	var a Alert
	var got []string
	var held []string
	step := func(out []Notification) {
		for _, n := range out {
			got = append(got, n.Type)
			if n.Type == TypeFlapTimer {
				var d map[string]string
				if err := json.Unmarshal(n.Data, &d); err != nil {
					t.Fatal(err)
				}
				held = append(held, d["heldEvent"])
			}
		}
	}
	for _, s := range []Signal{
		vmanage("e1", 0, true, "10.1.0.1"),
		vmanage("e2", 1, false, "10.1.0.1"), // held
		vmanage("e3", 1, true, "10.1.0.1"),  // flapped back: silent
		vmanage("e4", 2, true, "10.1.0.2"),  // a real deterioration
		vmanage("e5", 3, false, "10.1.0.1", "10.1.0.2"),
	} {
		_, out := Apply(&a, s, o)
		step(out)
	}
	_, out := ResolveHeld(&a, a.AlertID, held[0], o) // stale timer
	step(out)
	_, out = ResolveHeld(&a, a.AlertID, held[1], o)
	step(out)
	_, out = ResolveHeld(&a, a.AlertID, held[1], o) // fired twice
	step(out)
	want := "[alert.opened herald.timer.flap alert.deteriorated herald.timer.flap alert.resolved]"
	if fmt.Sprint(got) != want {
		t.Errorf("got %v\nwant %s", got, want)
	}
}

// TestStaleSignalsIgnored: a recovery processed before an older activation
// of the same device (two workers racing) is not undone by it.
func TestStaleSignalsIgnored(t *testing.T) {
	o := Options{Tenant: "acme"}
	var a Alert
	var got []string
	for _, s := range []Signal{
		clc("c1", 1, "triggered", "cpu"),
		clc("c3", 7, "notTriggered", "cpu"),
		clc("c2", 2, "triggered", "cpu"), // older than c3: stale
	} {
		_, out := Apply(&a, s, o)
		for _, n := range out {
			got = append(got, n.Type)
		}
	}
	if fmt.Sprint(got) != "[alert.opened alert.resolved]" || a.Open {
		t.Errorf("got %v, open %v", got, a.Open)
	}
}

// TestHistoryBounded: every notification is a transition in the record,
// and a long-open alert keeps only the last maxHistory of them.
func TestHistoryBounded(t *testing.T) {
	var a Alert
	o := Options{Tenant: "acme"}
	_, out := Apply(&a, vmanage("e1", 0, true, "10.1.0.1"), o)
	id := out[0].Subject
	if len(a.History) != 1 || a.History[0].NotificationID != out[0].ID || a.History[0].Transition != "opened" || a.History[0].Affected != 1 {
		t.Fatalf("history after opening: %+v", a.History)
	}
	var last Notification
	for n := 1; n <= maxHistory+5; n++ {
		_, out := Remind(&a, id, n, at(n*240), o)
		last = out[0]
	}
	if len(a.History) != maxHistory {
		t.Fatalf("history holds %d transitions, want %d", len(a.History), maxHistory)
	}
	if h := a.History[maxHistory-1]; h.NotificationID != last.ID || h.Sequence != uint64(maxHistory+6) || h.AlertID != id {
		t.Errorf("newest transition %+v, want the last reminder %s", h, last.ID)
	}
}

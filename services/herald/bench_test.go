package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/herald/loadtest"
)

// A small load run end to end: the embedded Herald, the receiver, the bare
// client and the audit cross-check. It asserts what the run proves (every
// pair received once and audited once), not how fast it was.
func TestBenchSmallRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a full load program; run without -short")
	}
	t.Parallel()
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	args := []string{"--events", "30", "--subs", "1,3", "--rate", "20,10x3", "--rate-seconds", "1", "--concurrency", "4", "--sync-always=false", "--json", out}
	if err := benchCmd(context.Background(), args, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "recorded twice") || !strings.Contains(stdout.String(), "saturation") {
		t.Errorf("report lacks its table:\n%s", stdout.String())
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res loadtest.Results
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.FanOut) != 2 || len(res.FixedRate) != 2 || len(res.Isolation) != 2 {
		t.Fatalf("phases: %d fan-out, %d fixed rate, %d isolation", len(res.FanOut), len(res.FixedRate), len(res.Isolation))
	}
	if res.FixedRate[1].Rate != 10 || res.FixedRate[1].Subscriptions != 3 || !res.Isolation[1].HungEndpoint || res.IsolationKept <= 0 {
		t.Errorf("phases not as asked: %+v %+v kept %v", res.FixedRate[1], res.Isolation[1], res.IsolationKept)
	}
	for _, f := range append(append(res.FanOut, res.FixedRate...), res.Isolation...) {
		if f.Expected != f.Events*f.Subscriptions || f.Received != f.Expected || f.Lost != 0 || f.Duplicates != 0 {
			t.Errorf("%d subs: %d events, %d pairs expected, %d received, %d lost, %d duplicates", f.Subscriptions, f.Events, f.Expected, f.Received, f.Lost, f.Duplicates)
		}
		if f.Audited != f.Expected || f.DoubleRecorded != 0 {
			t.Errorf("%d subs: %d of %d pairs audited, %d recorded twice", f.Subscriptions, f.Audited, f.Expected, f.DoubleRecorded)
		}
		if f.DeliveriesPerSecond <= 0 || f.P99ms <= 0 {
			t.Errorf("%d subs: no rate or latency measured: %+v", f.Subscriptions, f)
		}
	}
	if res.IngestSingle.PerSecond <= 0 || res.PeakRSSMiB <= 0 || res.CPUSecondsPer1000Deliveries <= 0 {
		t.Errorf("ingest %v, RSS %v, CPU %v: not measured", res.IngestSingle.PerSecond, res.PeakRSSMiB, res.CPUSecondsPer1000Deliveries)
	}
}

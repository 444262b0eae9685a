package loadtest

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// The receiver counts pairs by webhook-id: a second POST of a pair is a
// duplicate, not a new delivery, and the phase ends at the expected count.
func TestReceiverCountsPairsOnce(t *testing.T) {
	rcv, err := newReceiver()
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.close()
	p := rcv.startPhase("t1", 2)
	// Each event says it was sent a second ago, so its latency is at least that.
	post := func(path, id string) {
		t.Helper()
		body := `{"data":{"sent_unix_nano":` + strconv.FormatInt(time.Now().Add(-time.Second).UnixNano(), 10) + `}}`
		req, _ := http.NewRequest(http.MethodPost, rcv.url+path, bytes.NewReader([]byte(body)))
		req.Header.Set("webhook-id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post("/other", "x") // another phase's path: ignored
	post("/t1", "a")
	post("/t1", "a")
	post("/t1", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.wait(ctx); err != nil {
		t.Fatal(err)
	}
	r := p.result(time.Second)
	if r.Expected != 2 || r.Received != 2 || r.Duplicates != 1 || r.Lost != 0 || r.P99ms < 1000 {
		t.Errorf("result = %+v", r)
	}
	if p.sampleBody() == nil {
		t.Error("no sample body kept")
	}
}

func TestCheckNamesTheFailure(t *testing.T) {
	ok := PhaseResult{Subscriptions: 1, Expected: 3, Received: 3, Audited: 3}
	res := Results{FanOut: []PhaseResult{ok}, FixedRate: []PhaseResult{ok}}
	if err := res.Check(); err != nil {
		t.Fatalf("a clean run fails: %v", err)
	}
	for _, bad := range []func(*PhaseResult){
		func(f *PhaseResult) { f.Lost = 1 },
		func(f *PhaseResult) { f.Duplicates = 1 },
		func(f *PhaseResult) { f.Audited = 2 },
		func(f *PhaseResult) { f.DoubleRecorded = 1 },
	} {
		f := ok
		bad(&f)
		res := Results{FanOut: []PhaseResult{ok}, Isolation: []PhaseResult{ok, f}}
		if err := res.Check(); err == nil {
			t.Errorf("%+v passes Check", f)
		}
	}
}

package dispatcher

import (
	"errors"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

func TestFirstDelivery(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	recent, old := now.Add(-time.Second), now.Add(-contract.DuplicateWindow)
	for _, c := range []struct {
		name      string
		d         payload.Delivery
		delivered uint64
		want      bool
	}{
		{"plan message, first delivery", payload.Delivery{Attempt: 1, NotifiedAt: &recent}, 1, true},
		{"redelivered (crash or lost ack)", payload.Delivery{Attempt: 1, NotifiedAt: &recent}, 2, false},
		{"retry", payload.Delivery{Attempt: 2, NotifiedAt: &recent}, 1, false},
		{"replay", payload.Delivery{Attempt: 1, Replay: "r1", NotifiedAt: &recent}, 1, false},
		{"planned again after the duplicate window", payload.Delivery{Attempt: 1, NotifiedAt: &old}, 1, false},
		{"planned at an unknown time", payload.Delivery{Attempt: 1}, 1, false},
	} {
		if got := firstDelivery(c.d, c.delivered, now); got != c.want {
			t.Errorf("%s: firstDelivery = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDecidedByRecord(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	d := func(attempt int, replay string) payload.Delivery {
		return payload.Delivery{Attempt: attempt, Replay: replay}
	}
	for _, c := range []struct {
		name     string
		st       *pairState
		d        payload.Delivery
		decided  bool
		retryFor time.Duration // > 0: decided with a RetryAfterError of at least this
	}{
		{"no record", nil, d(1, ""), false, 0},
		{"delivered", &pairState{State: stateDelivered, Attempts: 1}, d(1, ""), true, 0},
		{"dead-lettered", &pairState{State: stateDeadLettered, Attempts: 8}, d(8, ""), true, 0},
		{"superseded by a replay", &pairState{State: stateRetryScheduled, Replay: "r2"}, d(1, "r1"), true, 0},
		{"stale duplicate of a recorded attempt", &pairState{State: stateRetryScheduled, Attempts: 2}, d(2, ""), true, 0},
		{"the retry that is due", &pairState{State: stateRetryScheduled, Attempts: 2}, d(3, ""), false, 0},
		{"leased by a live worker", &pairState{State: stateInFlight, Owner: "d2", LeaseUntil: now.Add(5 * time.Second)}, d(1, ""), true, 5 * time.Second},
		{"lease expired: take it over", &pairState{State: stateInFlight, Owner: "d2", LeaseUntil: now.Add(-time.Second)}, d(1, ""), false, 0},
	} {
		decided, err := decidedByRecord(c.st, c.d, now)
		if decided != c.decided {
			t.Errorf("%s: decided = %v, want %v", c.name, decided, c.decided)
		}
		var rae *bus.RetryAfterError
		switch {
		case c.retryFor > 0 && (!errors.As(err, &rae) || rae.Delay < c.retryFor):
			t.Errorf("%s: err %v, want a retry after %s", c.name, err, c.retryFor)
		case c.retryFor == 0 && err != nil:
			t.Errorf("%s: err %v, want none", c.name, err)
		}
	}
}

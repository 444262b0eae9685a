package dispatcher

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// Three instances share the deliverer; the one holding a POST is stopped
// mid-request. Every pair is still recorded delivered exactly once, and
// the receiver's duplicate carries the same webhook-id.
func TestThreeInstancesOneStoppedMidPost(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	blocked := make(chan string, 1)
	abandoned := make(chan struct{})
	var first atomic.Bool
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		if first.CompareAndSwap(false, true) {
			blocked <- r.Header.Get("webhook-id")
			<-r.Context().Done() // hang until the dispatcher gives up
			close(abandoned)
			return 503
		}
		return 200
	})
	sub, secret := h.putSub(subscription.Subscription{ID: "sub-1", URL: rc.URL})
	cfg := testConfig()
	cfg.Timeout = contract.DelivererAckWait / 2 // the stop, not the timeout, must end the hung POST
	var stops []func()
	var svcs []*Service
	for i := range 3 {
		cfg.InstanceID = fmt.Sprintf("inst-%d", i)
		svc, stop := h.start(cfg)
		svcs, stops = append(svcs, svc), append(stops, stop)
	}
	const pairs = 20
	for i := range pairs {
		h.notify("acme", "alert.opened", fmt.Sprintf("n-%d", i))
	}
	var hungID string
	select {
	case hungID = <-blocked:
	case <-time.After(20 * time.Second):
		t.Fatal("no request reached the receiver")
	}
	// Stop instances one by one until the hung POST is abandoned: that
	// one held the pair (no record names a first attempt's holder: the
	// consumer alone gives it to one worker). Each stopped bystander is
	// replaced, so two instances always remain to take the pair over.
	var owner string
	for i, svc := range svcs {
		stops[i]()
		select {
		case <-abandoned:
			owner = svc.instance
		case <-time.After(2 * time.Second):
			cfg.InstanceID = fmt.Sprintf("inst-%d-again", i)
			h.start(cfg)
			continue
		}
		break
	}
	if owner == "" {
		t.Fatal("stopping every instance did not abandon the hung POST")
	}

	for i := range pairs {
		h.waitState(fmt.Sprintf("n-%d", i), sub.ID, stateDelivered)
	}
	h.settled()

	perID := map[string]int{}
	for _, r := range rc.requests() {
		perID[r.ID]++
		if r.ID != hungID {
			verify(t, secret, r)
		}
	}
	if len(perID) != pairs {
		t.Errorf("%d distinct webhook-ids, want %d", len(perID), pairs)
	}
	if perID[hungID] < 2 {
		t.Errorf("hung pair posted %d times, want a retry with the same webhook-id", perID[hungID])
	}
	delivered := map[string]int{}
	for _, a := range h.attempts() {
		if a.Outcome == payload.OutcomeDelivered {
			delivered[a.NotificationID]++
		}
	}
	for i := range pairs {
		if n := delivered[fmt.Sprintf("n-%d", i)]; n != 1 {
			t.Errorf("pair n-%d recorded delivered %d times", i, n)
		}
	}
}

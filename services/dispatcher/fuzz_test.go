package dispatcher

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// fuzzContentTypes are the data content types a notification may carry;
// the fuzzer picks one by index, or none.
var fuzzContentTypes = []string{"", "application/json", "text/plain", "application/octet-stream", "application/xml; charset=utf-8", "application/cloudevents+json"}

// FuzzPlanAndDeliver drives arbitrary CloudEvents through a real planner
// and deliverer, on a real JetStream, to a real receiver, with one
// subscription per payload mode. Whatever the data and its content type,
// each pair is either delivered in every mode or set aside, and the
// process never panics out: a poison notification must never stop the
// dispatcher. Nothing is set aside for data the CloudEvents format can
// carry.
func FuzzPlanAndDeliver(f *testing.F) {
	f.Add([]byte(nil), uint8(0), false)
	f.Add([]byte(nil), uint8(1), true)
	f.Add([]byte("null"), uint8(1), true)
	f.Add([]byte(""), uint8(2), true)
	f.Add([]byte("not json at all"), uint8(2), true)
	f.Add([]byte{0xff, 0x00, 0xfe}, uint8(3), true)
	f.Add([]byte(`{"a":[1,2,{"b":"ü"}]}`), uint8(1), true)
	f.Add([]byte(`<alarm severity="major"/>`), uint8(4), true)
	f.Add([]byte(`{"nested":`), uint8(5), true)

	h := newHarness(f)
	var got atomic.Int64
	rc := newReceiver(f, func(int, *http.Request) int { got.Add(1); return http.StatusNoContent })
	for _, mode := range []string{subscription.PayloadStructured, subscription.PayloadBinary, subscription.PayloadTemplate} {
		sub := subscription.Subscription{ID: "fz-" + mode, URL: rc.URL + "/" + mode, Events: []string{"fuzz.*"}, PayloadMode: mode}
		if mode == subscription.PayloadTemplate {
			sub.Template = `{"id":"{{.id}}","data":"{{.data}}"}`
		}
		h.putSub(sub)
	}
	h.start(testConfig())
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte, ct uint8, withData bool) {
		th := *h // the harness's helpers must fail this iteration, not the F
		th.t = t
		id := "fz-" + strconv.FormatInt(n.Add(1), 10)
		e := event.New()
		e.SetID(id)
		e.SetSource("herald/engine")
		e.SetType("fuzz.happened")
		e.SetExtension("tenant", "acme")
		if withData {
			e.DataEncoded = data
			if c := fuzzContentTypes[int(ct)%len(fuzzContentTypes)]; c != "" {
				e.SetDataContentType(c)
			}
		}
		if e.Validate() != nil {
			t.Skip("not a CloudEvent")
		}
		before := got.Load()
		if _, err := bus.PublishEvent(context.Background(), h.srv.JS, contract.NotificationSubject("acme", "fuzz.happened"), id, e); err != nil {
			t.Fatal(err)
		}
		// Three pairs end: each is delivered, or recorded as failed (a
		// template that cannot render), never lost or left pending.
		natstest.Eventually(t, 20*time.Second, func() error {
			ended := 0
			for _, a := range th.attempts() {
				if a.NotificationID == id {
					ended++
				}
			}
			if ended < 3 {
				return fmt.Errorf("%d of 3 pairs of %s ended (%d POSTs so far)", ended, id, got.Load()-before)
			}
			return nil
		})
		if dl := th.deadLetters(); dl != 0 {
			t.Fatalf("%d messages set aside as poison for data %q (content type %q)", dl, data, e.DataContentType())
		}
	})
}

// deadLetters counts the messages on DEADLETTERS.
func (h *harness) deadLetters() uint64 {
	h.t.Helper()
	st, err := h.srv.JS.Stream(context.Background(), contract.StreamDeadLetters)
	if err != nil {
		return 0
	}
	info, err := st.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

package audit

import (
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/auditchain"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// A poison message set aside by a consumer becomes an audit record that
// says which consumer, where the original was and why; never its data.
func TestDeadLetterIsAudited(t *testing.T) {
	h := newHarness(t)
	dl := payload.DeadLetter{Consumer: contract.ConsumerDeliverer, Stream: contract.StreamDeliveries, StreamSeq: 17,
		Subject: "deliveries.acme.sub-1", Deliveries: 1, MessageID: "n1:sub-1", Type: payload.TypeDelivery,
		Reason: "handler panicked: runtime error: invalid memory address", At: time.Now().UTC(),
		Data: []byte(`{"secret-looking":"whsec_c2VjcmV0c2VjcmV0c2VjcmV0"}`)}
	h.publish(contract.DeadLetterSubject("acme", contract.ConsumerDeliverer), "dl:1", payload.TypeDeadLetter, "acme", dl.Subject, dl, nil)
	h.waitRecords("acme", 1)
	r := h.records("acme")[0]
	if r.Kind != auditchain.KindDeadLetter || r.Consumer != contract.ConsumerDeliverer || r.OriginStream != contract.StreamDeliveries ||
		r.OriginSeq != 17 || r.Subject != dl.Subject || r.Error != dl.Reason {
		t.Errorf("dead-letter record %+v", r)
	}
	if r.DataSHA256 != "" {
		t.Errorf("record carries a hash of the poison data")
	}
	if res := h.verify("acme"); !res.OK {
		t.Errorf("verify: %+v", res)
	}
}

package bus

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// poisonError is a handler's panic, caught: the message it was handling
// can never be handled, and redelivering it would only panic again.
type poisonError struct {
	value any
	stack string
}

func (e *poisonError) Error() string { return fmt.Sprintf("handler panicked: %v", e.value) }

// safely runs h, turning a panic into a *poisonError so that one message
// can never stop, or crash-loop, the process that reads it.
func safely(ctx context.Context, msg jetstream.Msg, h Handler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &poisonError{value: v, stack: string(debug.Stack())}
		}
	}()
	return h(ctx, msg)
}

// deadLetterRetry is how long a poison message waits when it cannot be set
// aside (the bus is unavailable): it is neither lost nor spun on.
const deadLetterRetry = 30 * time.Second

// setAside copies a poison message to DEADLETTERS with the reason, then
// terminates the original. The copy's id is the original's stream and
// sequence, so a retry after a failed termination stores it once. A
// message of DEADLETTERS itself is only terminated: setting it aside again
// would loop.
func setAside(ctx context.Context, msg jetstream.Msg, p *poisonError, delivered uint64, o ConsumeOptions) {
	meta, _ := msg.Metadata()
	dl := payload.DeadLetter{
		Consumer: o.Consumer, Subject: msg.Subject(), Deliveries: delivered,
		MessageID: msg.Headers().Get("ce-id"), Type: msg.Headers().Get("ce-type"),
		Reason: truncate(p.Error(), 1024), At: time.Now().UTC(),
		Headers: map[string][]string(msg.Headers()), Data: msg.Data(),
	}
	if meta != nil {
		dl.Stream, dl.StreamSeq = meta.Stream, meta.Sequence.Stream
	}
	if dl.MessageID == "" {
		dl.MessageID = msg.Headers().Get(nats.MsgIdHdr)
	}
	o.Logger.ErrorContext(ctx, "handler panicked; message set aside", "consumer", o.Consumer,
		"stream", dl.Stream, "stream_seq", dl.StreamSeq, "subject", dl.Subject, "message_id", dl.MessageID,
		"deliveries", delivered, "panic", fmt.Sprint(p.value), "stack", p.stack)
	if o.OnPoison != nil {
		o.OnPoison(ctx, o.Consumer)
	}
	if o.DeadLetters != nil && dl.Stream != contract.StreamDeadLetters {
		if err := publishDeadLetter(ctx, o.DeadLetters, dl); err != nil {
			o.Logger.ErrorContext(ctx, "set aside poison message failed; will redeliver", "consumer", o.Consumer,
				"stream", dl.Stream, "stream_seq", dl.StreamSeq, "error", err)
			if err := msg.NakWithDelay(deadLetterRetry); err != nil {
				o.Logger.WarnContext(ctx, "nak failed", "consumer", o.Consumer, "error", err)
			}
			return
		}
	}
	if err := msg.TermWithReason(truncate("poison: "+p.Error(), 200)); err != nil {
		o.Logger.WarnContext(ctx, "terminate poison message failed; it will be redelivered and set aside again",
			"consumer", o.Consumer, "error", err)
	}
}

func publishDeadLetter(ctx context.Context, js Publisher, dl payload.DeadLetter) error {
	tenant, ok := contract.TenantFromSubject(dl.Subject)
	if !ok || contract.ValidateToken(tenant) != nil {
		tenant = "-" // a subject that names no valid tenant still gets set aside
	}
	id := "dl:" + dl.Consumer + ":" + dl.Stream + ":" + strconv.FormatUint(dl.StreamSeq, 10)
	e := event.New()
	e.SetID(id)
	e.SetSource("herald/" + strings.SplitN(dl.Consumer, "-", 2)[0])
	e.SetType(payload.TypeDeadLetter)
	e.SetSubject(dl.Subject)
	e.SetTime(dl.At)
	if tenant != "-" {
		e.SetExtension("tenant", tenant)
	}
	if err := e.SetData(event.ApplicationJSON, dl); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := PublishEvent(pctx, js, contract.DeadLetterSubject(tenant, dl.Consumer), id, e)
	return err
}

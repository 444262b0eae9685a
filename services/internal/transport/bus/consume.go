package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Handler processes one message. Its result decides the acknowledgement:
// nil acks, a Permanent error terms, a *RetryAfterError naks with its delay,
// and any other error naks with the consumer's back-off for that attempt.
// A handler must be idempotent: a message may arrive more than once.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// PermanentError marks a failure that redelivery cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that the message is terminated, not redelivered.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is or wraps a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryAfterError asks for redelivery after Delay.
type RetryAfterError struct {
	Delay time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %v", e.Delay, e.Err)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// ConsumeOptions tune a consume loop.
type ConsumeOptions struct {
	// Workers is how many messages are handled at once. Default 1, which
	// keeps per-subject order for the engine.
	Workers int
	// Consumer names the durable in spans and logs.
	Consumer string
	// BackOff gives the nak delay per delivery count; the last entry
	// repeats. Defaults to 1s, 5s, 15s, 30s, 1m.
	BackOff []time.Duration
	Logger  *slog.Logger
	// AckNoWait acks a handled message without waiting for the server to
	// confirm the ack (Ack instead of DoubleAck). An ack lost on the way
	// then means one more delivery after AckWait, so it is only for a
	// consumer whose handler makes a redelivery of a handled message a
	// no-op (not merely idempotent in effect, but cheap and without
	// outside side effects, like the dispatcher's deliverer, whose
	// delivery-state record acks a settled pair without a POST). The
	// worker is free one server round trip (and, with fsync always, one
	// fsync) sooner.
	AckNoWait bool
	// DeadLetters receives, on contract.DeadLetterSubject, a copy of every
	// message whose handler panicked, before the original is terminated.
	// Nil (tests of other concerns only) terminates with a log line alone.
	DeadLetters Publisher
	// OnPoison is called once for each message whose handler panicked,
	// with this consumer's name; services count it as a metric.
	OnPoison func(ctx context.Context, consumer string)
}

var defaultBackOff = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute}

// Consume pulls from c and runs h on each message until ctx is cancelled.
// On cancel it stops pulling, lets in-flight handlers finish, and returns
// nil. Handlers get a context that is not cancelled with ctx, so that work
// already started completes and is acknowledged during a drain.
func Consume(ctx context.Context, c jetstream.Consumer, h Handler, o ConsumeOptions) error {
	if o.Workers < 1 {
		o.Workers = 1
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if len(o.BackOff) == 0 {
		o.BackOff = defaultBackOff
	}
	iter, err := c.Messages(jetstream.PullMaxMessages(o.Workers*2), jetstream.PullExpiry(5*time.Second))
	if err != nil {
		return fmt.Errorf("consume %s: %w", o.Consumer, err)
	}
	stop := context.AfterFunc(ctx, iter.Drain)
	defer stop()

	work := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for i := 0; i < o.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range work {
				handleOne(context.WithoutCancel(ctx), msg, h, o)
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	for {
		msg, err := iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return nil
			}
			o.Logger.WarnContext(ctx, "pull failed; retrying", "consumer", o.Consumer, "error", err)
			continue
		}
		select {
		case work <- msg:
		case <-ctx.Done():
			// Not started: leave it to redelivery.
			_ = msg.Nak()
			return nil
		}
	}
}

func handleOne(ctx context.Context, msg jetstream.Msg, h Handler, o ConsumeOptions) {
	ctx = Extract(ctx, msg.Headers())
	meta, _ := msg.Metadata()
	attrs := []attribute.KeyValue{attrSystem, keyDestination.String(msg.Subject()),
		keyOperation.String("process"), keyConsumer.String(o.Consumer)}
	var delivered uint64
	if meta != nil {
		delivered = meta.NumDelivered
		attrs = append(attrs, keyStream.String(meta.Stream), keyDeliveries.Int64(int64(delivered)))
	}
	ctx, span := tracer().Start(ctx, "process "+streamOf(msg.Subject()),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	defer span.End()

	err := safely(ctx, msg, h)
	var poison *poisonError
	if errors.As(err, &poison) {
		setAside(ctx, msg, poison, delivered, o)
		span.SetStatus(codes.Error, poison.Error())
		return
	}
	settle(ctx, msg, err, delivered, o)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
}

// settle is the one place where a handler's result becomes an ack.
func settle(ctx context.Context, msg jetstream.Msg, err error, delivered uint64, o ConsumeOptions) {
	var ackErr error
	var rae *RetryAfterError
	switch {
	case err == nil && o.AckNoWait:
		ackErr = msg.Ack()
	case err == nil:
		ackErr = msg.DoubleAck(ctx)
	case IsPermanent(err):
		o.Logger.ErrorContext(ctx, "message terminated", "consumer", o.Consumer, "subject", msg.Subject(), "error", err)
		ackErr = msg.TermWithReason(truncate(err.Error(), 200))
	case errors.As(err, &rae):
		ackErr = msg.NakWithDelay(rae.Delay)
	default:
		d := o.BackOff[len(o.BackOff)-1]
		if delivered > 0 && int(delivered) <= len(o.BackOff) {
			d = o.BackOff[delivered-1]
		}
		o.Logger.WarnContext(ctx, "handler failed; will redeliver", "consumer", o.Consumer, "subject", msg.Subject(), "delay", d, "error", err)
		ackErr = msg.NakWithDelay(d)
	}
	if ackErr != nil {
		o.Logger.WarnContext(ctx, "acknowledge failed; message will be redelivered", "consumer", o.Consumer, "subject", msg.Subject(), "error", ackErr)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

package bus

import (
	"context"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/services/internal/transport/cenats"
)

// Publisher is the one method of jetstream.JetStream that publishing needs;
// jetstream.JetStream satisfies it.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// PublishEvent stores e on subject in binary mode, with msgID as Nats-Msg-Id
// so that JetStream drops a re-publish inside the duplicate window. It
// returns only after the JetStream ack; ack.Duplicate tells a re-publish.
// The span is a messaging "send" span and its context goes in the headers.
func PublishEvent(ctx context.Context, js Publisher, subject, msgID string, e event.Event, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ctx, span := tracer().Start(ctx, "send "+streamOf(subject), trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attrSystem, keyDestination.String(subject), keyOperation.String("send"),
			keyMessageID.String(msgID), keyCloudEventID.String(e.ID())))
	defer span.End()
	msg, err := EventMsg(ctx, subject, msgID, e)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return nil, err
	}
	ack, err := js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return nil, fmt.Errorf("publish %s: %w", subject, err)
	}
	return ack, nil
}

// EventMsg encodes e for subject in binary mode, with the trace context of
// ctx in its headers and its extension, and msgID as Nats-Msg-Id (a header
// rather than jetstream.WithMsgID: the same on the wire, and it lets a
// Batcher or PublishAtomic take the message).
func EventMsg(ctx context.Context, subject, msgID string, e event.Event) (*nats.Msg, error) {
	SetTraceExtension(ctx, &e)
	msg, err := cenats.Encode(ctx, subject, e, cenats.Binary)
	if err != nil {
		return nil, err
	}
	Inject(ctx, msg.Header)
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	return msg, nil
}

// streamOf names a subject's stream for span names, from its first token.
func streamOf(subject string) string {
	for i := 0; i < len(subject); i++ {
		if subject[i] == '.' {
			return subject[:i]
		}
	}
	return subject
}

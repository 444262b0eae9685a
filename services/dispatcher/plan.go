package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// eventSource is the CloudEvent source of what the dispatcher publishes.
const eventSource = "herald/dispatcher"

// handlePlan fans one notification out to its matching subscriptions. It
// returns (and so acks) only after every DELIVERIES publish is acked; a
// redelivered notification re-publishes the same message ids, which
// JetStream drops as duplicates.
func (s *Service) handlePlan(ctx context.Context, msg jetstream.Msg) error {
	n, err := cenats.Decode(msg.Headers(), msg.Data())
	if err != nil {
		return bus.Permanent(err)
	}
	tenant, _ := n.Extensions()["tenant"].(string)
	if tenant == "" {
		tenant, _ = contract.TenantFromSubject(msg.Subject())
	}
	if err := contract.ValidateToken(tenant); err != nil {
		return bus.Permanent(err)
	}
	subs := s.index.match(tenant, n.Type())
	if len(subs) == 0 {
		return nil
	}
	raw, err := encodeNotification(n)
	if err != nil {
		return bus.Permanent(fmt.Errorf("encode notification %s: %w", n.ID(), err))
	}
	var seq uint64
	var notifiedAt *time.Time
	if meta, err := msg.Metadata(); err == nil {
		seq = meta.Sequence.Stream
		at := meta.Timestamp.UTC()
		notifiedAt = &at
	}
	var data any
	decoded := false
	var pairs []payload.Delivery
	for _, sub := range subs {
		if sub.Filter != "" {
			if !decoded {
				decoded = true
				if len(n.Data()) > 0 {
					_ = json.Unmarshal(n.Data(), &data) // non-JSON data: filters over data do not match
				}
			}
			if !s.filters.matches(sub.Filter, n, tenant, data) {
				continue
			}
		}
		d := payload.Delivery{
			Tenant: sub.Tenant, SubscriptionID: sub.ID, NotificationTenant: tenant,
			NotificationID: n.ID(), NotificationType: n.Type(), Notification: raw, NotificationSeq: seq, NotifiedAt: notifiedAt, Attempt: 1,
		}
		pairs = append(pairs, d)
	}
	// Every pair in flight at once: through the pairs Batcher they share
	// their fsyncs with each other and with other notifications' pairs.
	errs := make([]error, len(pairs))
	var wg sync.WaitGroup
	for i, d := range pairs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.publishDelivery(ctx, d, d.NotificationID+":"+d.SubscriptionID)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// encodeNotification renders n as a structured CloudEvent. Data declared
// JSON that is not JSON cannot be inlined; it travels as data_base64 with
// its declared content type, as the JSON format allows for any data, rather
// than the pair being dropped.
func encodeNotification(n event.Event) ([]byte, error) {
	raw, err := json.Marshal(n)
	if err == nil || n.DataBase64 || len(n.Data()) == 0 {
		return raw, err
	}
	n.DataBase64 = true
	return json.Marshal(n)
}

// deliveryEvent wraps a pair as a herald.delivery CloudEvent.
func deliveryEvent(d payload.Delivery, id string) (event.Event, error) {
	e := event.New()
	e.SetID(id)
	e.SetSource(eventSource)
	e.SetType(payload.TypeDelivery)
	e.SetSubject(d.SubscriptionID)
	e.SetExtension("tenant", d.Tenant)
	if err := e.SetData(event.ApplicationJSON, d); err != nil {
		return e, err
	}
	return e, nil
}

func (s *Service) publishDelivery(ctx context.Context, d payload.Delivery, msgID string, opts ...jetstream.PublishOpt) error {
	e, err := deliveryEvent(d, msgID)
	if err != nil {
		return bus.Permanent(err)
	}
	subject := contract.DeliverySubject(d.Tenant, d.SubscriptionID)
	if len(opts) > 0 {
		// A scheduled retry: stored on the pair's schedule subject and
		// re-published to the delivery subject when due.
		subject = contract.DeliveryScheduleSubject(d.Tenant, d.SubscriptionID, pairKey(d.NotificationID, d.SubscriptionID))
		opts = append(opts, jetstream.WithScheduleTarget(contract.DeliverySubject(d.Tenant, d.SubscriptionID)))
	}
	var via bus.Publisher = s.js
	if s.pairs != nil && len(opts) == 0 {
		via = s.pairs
	}
	if _, err := bus.PublishEvent(ctx, via, subject, msgID, e, opts...); err != nil {
		return err
	}
	return nil
}

// filterCache holds compiled CEL filters by expression; the registry
// type-checked them already, so a compile error here means "no match".
type filterCache struct{ m sync.Map }

func (c *filterCache) matches(expr string, n event.Event, tenant string, data any) bool {
	var f *subscription.Filter
	if v, ok := c.m.Load(expr); ok {
		f, _ = v.(*subscription.Filter)
	} else {
		compiled, err := subscription.CompileFilter(expr)
		if err == nil {
			f = compiled
		}
		c.m.Store(expr, f)
	}
	if f == nil {
		return false
	}
	ok, err := f.Eval(subscription.FilterEvent{ID: n.ID(), Source: n.Source(), Type: n.Type(), Subject: n.Subject(), Tenant: tenant, Time: n.Time()}, data)
	return err == nil && ok
}

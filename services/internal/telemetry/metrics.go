package telemetry

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

const meterName = "github.com/heraldhq/herald"

// Instrument names. Attributes are low-cardinality by design: never a
// tenant, subscription or event id.
const (
	NameIngestEvents    = "herald.ingest.events"    // {type, result}
	NameNotifications   = "herald.notifications"    // {type}
	NameDeliveries      = "herald.deliveries"       // {outcome}
	NameDeliveryLatency = "herald.delivery.latency" // seconds, ingest to delivered
	NameConsumerLag     = "herald.consumer.lag"     // {stream, consumer}
	NameBreakersOpen    = "herald.breakers.open"    // open circuit breakers
	NameDeadLetters     = "herald.deadletters"      // dead-lettered pairs
	NamePoisonMessages  = "herald.poison.messages"  // {consumer} handler panicked, message set aside
)

// Attribute keys.
const (
	KeyType     = attribute.Key("type")
	KeyResult   = attribute.Key("result")  // accepted, duplicate, rejected, failed
	KeyOutcome  = attribute.Key("outcome") // delivered, retry, failed, deadletter, gone
	KeyStream   = attribute.Key("stream")
	KeyConsumer = attribute.Key("consumer")
)

// latencyView gives the delivery-latency histogram buckets that span a
// direct delivery (milliseconds) to the last retry (about a day).
var latencyView = sdkmetric.NewView(
	sdkmetric.Instrument{Name: NameDeliveryLatency},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
		Boundaries: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 18000, 86400},
	}},
)

// Metrics are Herald's instruments. Services take a *Metrics built once per
// process; its methods fix the attribute keys.
type Metrics struct {
	IngestEvents    metric.Int64Counter
	Notifications   metric.Int64Counter
	Deliveries      metric.Int64Counter
	DeliveryLatency metric.Float64Histogram
	BreakersOpen    metric.Int64ObservableGauge
	DeadLetters     metric.Int64Counter
	PoisonMessages  metric.Int64Counter

	meter metric.Meter
}

// NewMetrics creates the instruments on m.
func NewMetrics(m metric.Meter) (*Metrics, error) {
	x := Metrics{meter: m}
	var err error
	if x.IngestEvents, err = m.Int64Counter(NameIngestEvents, metric.WithUnit("{event}"),
		metric.WithDescription("Events posted to the collector, by type and result")); err != nil {
		return nil, err
	}
	if x.Notifications, err = m.Int64Counter(NameNotifications, metric.WithUnit("{notification}"),
		metric.WithDescription("Notifications published by the engine, by type")); err != nil {
		return nil, err
	}
	if x.Deliveries, err = m.Int64Counter(NameDeliveries, metric.WithUnit("{attempt}"),
		metric.WithDescription("Delivery attempts, by outcome")); err != nil {
		return nil, err
	}
	if x.DeliveryLatency, err = m.Float64Histogram(NameDeliveryLatency, metric.WithUnit("s"),
		metric.WithDescription("Time from a notification's publication to its successful delivery, retries included")); err != nil {
		return nil, err
	}
	if x.BreakersOpen, err = m.Int64ObservableGauge(NameBreakersOpen, metric.WithUnit("{breaker}"),
		metric.WithDescription("Endpoint circuit breakers currently open")); err != nil {
		return nil, err
	}
	if x.DeadLetters, err = m.Int64Counter(NameDeadLetters, metric.WithUnit("{pair}"),
		metric.WithDescription("Pairs dead-lettered after the retry schedule")); err != nil {
		return nil, err
	}
	if x.PoisonMessages, err = m.Int64Counter(NamePoisonMessages, metric.WithUnit("{message}"),
		metric.WithDescription("Messages whose handler panicked, set aside on DEADLETTERS, by consumer")); err != nil {
		return nil, err
	}
	return &x, nil
}

// Poisoned counts one message that the consumer's handler could not handle
// at all; it has the signature of bus.ConsumeOptions.OnPoison.
func (x *Metrics) Poisoned(ctx context.Context, consumer string) {
	if x == nil {
		return
	}
	x.PoisonMessages.Add(ctx, 1, metric.WithAttributes(KeyConsumer.String(consumer)))
}

// Ingested counts one event by its type and result.
func (x *Metrics) Ingested(ctx context.Context, eventType, result string) {
	if x == nil {
		return
	}
	x.IngestEvents.Add(ctx, 1, metric.WithAttributes(KeyType.String(eventType), KeyResult.String(result)))
}

// Notified counts one published notification.
func (x *Metrics) Notified(ctx context.Context, notificationType string) {
	if x == nil {
		return
	}
	x.Notifications.Add(ctx, 1, metric.WithAttributes(KeyType.String(notificationType)))
}

// Delivered counts one attempt by outcome.
func (x *Metrics) Delivered(ctx context.Context, outcome string) {
	if x == nil {
		return
	}
	x.Deliveries.Add(ctx, 1, metric.WithAttributes(KeyOutcome.String(outcome)))
}

// DeliveredAfter records how long a delivered pair took since its
// notification was stored, retries included.
func (x *Metrics) DeliveredAfter(ctx context.Context, d time.Duration) {
	if x == nil {
		return
	}
	x.DeliveryLatency.Record(ctx, d.Seconds())
}

// ObserveBreakersOpen reports open() as the number of open circuit
// breakers at each collection, until stop is called. The breakers live in
// the dispatcher and open and close by time, so they are observed, not
// counted.
func (x *Metrics) ObserveBreakersOpen(open func() int64) (stop func(), err error) {
	if x == nil {
		return func() {}, nil
	}
	reg, err := x.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(x.BreakersOpen, open())
		return nil
	}, x.BreakersOpen)
	if err != nil {
		return nil, fmt.Errorf("register open breakers: %w", err)
	}
	return func() { _ = reg.Unregister() }, nil
}

// ConsumerLookup is the part of jetstream.JetStream that RegisterConsumerLag
// needs.
type ConsumerLookup interface {
	Consumer(ctx context.Context, stream, consumer string) (jetstream.Consumer, error)
}

// lagTimeout bounds one consumer-info request during a scrape.
const lagTimeout = 2 * time.Second

// RegisterConsumerLag reports herald.consumer.lag for one durable: messages
// not yet delivered (NumPending) plus delivered but unacknowledged
// (NumAckPending). A failed lookup skips the observation for that scrape.
// Unregister the returned registration when the service stops.
func RegisterConsumerLag(m metric.Meter, js ConsumerLookup, stream, durable string) (metric.Registration, error) {
	g, err := m.Int64ObservableGauge(NameConsumerLag, metric.WithUnit("{message}"),
		metric.WithDescription("Messages pending or awaiting ack per durable consumer"))
	if err != nil {
		return nil, err
	}
	attrs := metric.WithAttributes(KeyStream.String(stream), KeyConsumer.String(durable))
	reg, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, lagTimeout)
		defer cancel()
		c, err := js.Consumer(ctx, stream, durable)
		if err != nil {
			return nil // not provisioned yet: no observation
		}
		info, err := c.Info(ctx)
		if err != nil {
			return nil
		}
		o.ObserveInt64(g, int64(info.NumPending)+int64(info.NumAckPending), attrs)
		return nil
	}, g)
	if err != nil {
		return nil, fmt.Errorf("register lag of %s/%s: %w", stream, durable, err)
	}
	return reg, nil
}

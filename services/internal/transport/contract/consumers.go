package contract

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// redeliveryBackOff spaces out redeliveries of a message whose handler
// failed transiently (the bus or a KV bucket briefly unavailable). After the
// last step, every further redelivery waits the last step's time.
var redeliveryBackOff = []time.Duration{
	time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute,
}

// maxDeliverPipeline bounds redeliveries of pipeline messages. With the
// back-off above it amounts to about two days of retrying before JetStream
// gives up and emits a MAX_DELIVERIES advisory, which operators alert on.
const maxDeliverPipeline = 3000

func pipelineConsumer(durable, filter, description string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   description,
		FilterSubject: filter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    maxDeliverPipeline,
		BackOff:       redeliveryBackOff,
		MaxAckPending: 1000,
	}
}

// EngineConsumer reads raw events for the alert-state engine.
func EngineConsumer() jetstream.ConsumerConfig {
	return pipelineConsumer(ConsumerEngine, EventsWildcard, "Alert-state engine: events to notifications")
}

// EngineTimersConsumer reads fired timers for the engine.
func EngineTimersConsumer() jetstream.ConsumerConfig {
	return pipelineConsumer(ConsumerEngineTimers, TimersWildcard, "Alert-state engine: fired deadlines and reminders")
}

// PlannerConsumer reads notifications for the dispatcher's planner.
func PlannerConsumer() jetstream.ConsumerConfig {
	return pipelineConsumer(ConsumerPlanner, NotificationsWildcard, "Dispatcher plan: notifications x subscriptions")
}

// DelivererAckWait is longer than the longest HTTP attempt plus the
// bookkeeping around it; a deliverer also sends InProgress while it waits.
// It is also how long the pairs of a crashed dispatcher wait before
// another instance takes them.
const DelivererAckWait = 30 * time.Second

// DelivererConsumer is the one pull consumer shared by every dispatcher
// instance. It filters deliveries.> only, so the scheduled retries on
// deliveries-scheduled.> wait in the stream until they fire.
//
// It has no BackOff: with one, the server takes BackOff[0] as the AckWait
// of a first delivery, and the claim protocol rests on a delivered message
// being held by its one worker for the whole AckWait (extended by
// InProgress during a slow POST). Failed attempts are retried as scheduled
// messages, not redeliveries, so a back-off would only space out the
// redeliveries of a crashed instance's pairs.
func DelivererConsumer() jetstream.ConsumerConfig {
	c := pipelineConsumer(ConsumerDeliverer, DeliveriesWildcard, "Dispatcher deliver: one HTTP POST per pair")
	c.AckWait = DelivererAckWait
	c.BackOff = nil
	c.MaxAckPending = 4096
	return c
}

// AuditConsumers are the audit service's durables: the four pipeline
// streams and the poison messages set aside on DEADLETTERS.
func AuditConsumers() map[string]jetstream.ConsumerConfig {
	return map[string]jetstream.ConsumerConfig{
		StreamEvents:        pipelineConsumer(ConsumerAuditEvents, EventsWildcard, "Audit: accepted events"),
		StreamNotifications: pipelineConsumer(ConsumerAuditNotifs, NotificationsWildcard, "Audit: notifications"),
		StreamAttempts:      pipelineConsumer(ConsumerAuditAttempts, AttemptsWildcard, "Audit: delivery attempts"),
		StreamChanges:       pipelineConsumer(ConsumerAuditChanges, ChangesWildcard, "Audit: registry changes"),
		StreamDeadLetters:   pipelineConsumer(ConsumerAuditDead, DeadLettersWildcard, "Audit: poison messages set aside"),
	}
}

// Durable is one durable consumer: its stream, its name and the service
// that reads it.
type Durable struct {
	Stream, Name, Service string
}

// Durables lists every durable consumer of the pipeline, or those the named
// service reads when service is not "" (for its consumer-lag gauges).
func Durables(service string) []Durable {
	all := []Durable{
		{StreamEvents, ConsumerEngine, "engine"},
		{StreamTimers, ConsumerEngineTimers, "engine"},
		{StreamNotifications, ConsumerPlanner, "dispatcher"},
		{StreamDeliveries, ConsumerDeliverer, "dispatcher"},
	}
	for _, stream := range []string{StreamEvents, StreamNotifications, StreamAttempts, StreamChanges, StreamDeadLetters} {
		all = append(all, Durable{stream, AuditConsumers()[stream].Durable, "audit"})
	}
	if service == "" {
		return all
	}
	var mine []Durable
	for _, d := range all {
		if d.Service == service {
			mine = append(mine, d)
		}
	}
	return mine
}

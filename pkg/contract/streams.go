package contract

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Topology sets what differs between the dev default and production: the
// replica count (1 on one server, 3 on a cluster) and the storage.
type Topology struct {
	Replicas int
	Storage  jetstream.StorageType
}

// DefaultTopology is one replica on file storage, the embedded default.
var DefaultTopology = Topology{Replicas: 1, Storage: jetstream.FileStorage}

func (t Topology) replicas() int {
	if t.Replicas < 1 {
		return 1
	}
	return t.Replicas
}

// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. An event
// re-posted with the same source and id inside it is stored once.
const DuplicateWindow = 10 * time.Minute

// EventsStream holds accepted raw events. Written by the collector.
func EventsStream(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               StreamEvents,
		Description:        "Accepted raw events, one subject per tenant and type",
		Subjects:           []string{EventsWildcard},
		Retention:          jetstream.LimitsPolicy,
		MaxAge:             7 * 24 * time.Hour,
		Storage:            t.Storage,
		Replicas:           t.replicas(),
		Duplicates:         DuplicateWindow,
		AllowAtomicPublish: true, // bus.Batcher group-commits its writes
		Discard:            jetstream.DiscardOld,
	}
}

// NotificationsStream holds the notifications derived from events. Written
// by the engine (and by the dispatcher for subscription.disabled).
func NotificationsStream(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               StreamNotifications,
		Description:        "Notifications to fan out to subscribers",
		Subjects:           []string{NotificationsWildcard},
		Retention:          jetstream.LimitsPolicy,
		MaxAge:             7 * 24 * time.Hour,
		Storage:            t.Storage,
		Replicas:           t.replicas(),
		Duplicates:         DuplicateWindow,
		AllowAtomicPublish: true, // bus.Batcher group-commits its writes
	}
}

// DeliveriesStream is the work queue of (notification, subscription) pairs.
// Retries are scheduled messages on deliveries-scheduled.>, so that a pair
// waiting hours for its next attempt occupies no consumer's ack window.
func DeliveriesStream(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               StreamDeliveries,
		Description:        "Work queue of (notification, subscription) pairs and their scheduled retries",
		Subjects:           []string{DeliveriesWildcard, DeliverySchedWildcard},
		Retention:          jetstream.WorkQueuePolicy,
		Storage:            t.Storage,
		Replicas:           t.replicas(),
		Duplicates:         DuplicateWindow,
		AllowAtomicPublish: true, // bus.Batcher group-commits its writes
		AllowMsgSchedules:  true,
		AllowMsgTTL:        true,
	}
}

// AttemptsStream records every HTTP attempt. Written by the dispatcher.
func AttemptsStream(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               StreamAttempts,
		Description:        "Every delivery attempt with status, latency and error class",
		Subjects:           []string{AttemptsWildcard},
		Retention:          jetstream.LimitsPolicy,
		MaxAge:             30 * 24 * time.Hour,
		Storage:            t.Storage,
		Replicas:           t.replicas(),
		Duplicates:         DuplicateWindow,
		AllowAtomicPublish: true, // bus.Batcher group-commits its writes
	}
}

// ChangesStream records registry changes. Written by the registry.
func ChangesStream(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamChanges,
		Description: "Registry changes with actor, time and redacted diff",
		Subjects:    []string{ChangesWildcard},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Storage:     t.Storage,
		Replicas:    t.replicas(),
		Duplicates:  DuplicateWindow,
	}
}

// AuditStream holds the per-tenant hash-chained trail. Written by audit.
func AuditStream(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamAudit,
		Description: "Per-tenant hash-chained audit trail",
		Subjects:    []string{AuditWildcard},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      365 * 24 * time.Hour,
		Storage:     t.Storage,
		Replicas:    t.replicas(),
		Duplicates:  DuplicateWindow,
	}
}

// TimersStream holds the engine's durable timers (operation deadlines, alert
// reminders) as scheduled messages, and the fired timers on timers.>.
func TimersStream(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              StreamTimers,
		Description:       "Engine timers: schedules and fired timers",
		Subjects:          []string{TimersWildcard, TimerSchedulesWildcard},
		Retention:         jetstream.LimitsPolicy,
		MaxAge:            30 * 24 * time.Hour,
		Storage:           t.Storage,
		Replicas:          t.replicas(),
		Duplicates:        DuplicateWindow,
		AllowMsgSchedules: true,
		AllowMsgTTL:       true,
		AllowRollup:       true,
		MaxMsgsPerSubject: 1,
	}
}

// DeadLettersStream keeps the messages whose handler panicked, copied aside
// with the reason before the original was terminated, so that one poison
// message never stops a consumer and is never lost. Written by every
// consuming service (each ensures it), read by audit.
func DeadLettersStream(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamDeadLetters,
		Description: "Poison messages set aside by the consumer that could not handle them",
		Subjects:    []string{DeadLettersWildcard},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Storage:     t.Storage,
		Replicas:    t.replicas(),
		Duplicates:  DuplicateWindow,
	}
}

// AllStreams lists every stream config, for provisioning tools and tests.
func AllStreams(t Topology) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		EventsStream(t), NotificationsStream(t), DeliveriesStream(t),
		AttemptsStream(t), ChangesStream(t), AuditStream(t), TimersStream(t),
		DeadLettersStream(t),
	}
}

// Bucket returns the config of a KV bucket by name.
func Bucket(name string, t Topology) jetstream.KeyValueConfig {
	cfg := jetstream.KeyValueConfig{
		Bucket:   name,
		Storage:  t.Storage,
		Replicas: t.replicas(),
		History:  1,
	}
	switch name {
	case BucketTenants:
		cfg.Description = "Tenants and their hierarchy; written by the registry"
	case BucketSubscriptions:
		cfg.Description = "Subscriptions keyed <tenant>.<id>; written by the registry, watched by the dispatcher"
	case BucketAPIKeys:
		cfg.Description = "Hashed tenant API keys; written by the collector (pkg/apikey), read by every API"
	case BucketAlerts:
		cfg.Description = "Alert state per key; written by the engine with CAS"
	case BucketOperations:
		cfg.Description = "Async operation state per protocol UUID; written by the engine with CAS"
	case BucketDeliveryState:
		cfg.Description = "One record per (notification, subscription); written by the dispatcher with CAS"
		cfg.TTL = 30 * 24 * time.Hour
	case BucketEndpointHealth:
		cfg.Description = "Per-endpoint failure streaks; written by the dispatcher"
	case BucketAuditHeads:
		cfg.Description = "Head (sequence, hash) of each tenant's audit chain; written by audit with CAS"
	}
	return cfg
}

// AllBuckets lists every bucket name.
var AllBuckets = []string{
	BucketTenants, BucketSubscriptions, BucketAPIKeys, BucketAlerts,
	BucketOperations, BucketDeliveryState, BucketEndpointHealth, BucketAuditHeads,
}

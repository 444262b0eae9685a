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

// streamSpec is one row of the stream table: everything about a stream but
// its topology (replicas, storage), which the deployment decides.
type streamSpec struct {
	name        string
	description string
	subjects    []string
	retention   jetstream.RetentionPolicy
	maxAge      time.Duration // 0: kept until consumed (work queues)
	duplicates  time.Duration
	discard     jetstream.DiscardPolicy
	// atomicPublish lets bus.Batcher group-commit its writes.
	atomicPublish bool
	// schedules and ttl carry scheduled messages (retries, timers).
	schedules bool
	ttl       bool
	rollup    bool
	// maxPerSubject 0 means unlimited.
	maxPerSubject int64
}

// streamTable lists every stream, in provisioning order. The exported
// constructors below read their row from it; contract_test compares each
// generated config to its expected value so a row cannot drift silently.
var streamTable = []streamSpec{
	{
		name:          StreamEvents,
		description:   "Accepted raw events, one subject per tenant and type",
		subjects:      []string{EventsWildcard},
		retention:     jetstream.LimitsPolicy,
		maxAge:        7 * 24 * time.Hour,
		duplicates:    DuplicateWindow,
		discard:       jetstream.DiscardOld,
		atomicPublish: true,
	},
	{
		name:          StreamNotifications,
		description:   "Notifications to fan out to subscribers",
		subjects:      []string{NotificationsWildcard},
		retention:     jetstream.LimitsPolicy,
		maxAge:        7 * 24 * time.Hour,
		duplicates:    DuplicateWindow,
		atomicPublish: true,
	},
	{
		name:          StreamDeliveries,
		description:   "Work queue of (notification, subscription) pairs and their scheduled retries",
		subjects:      []string{DeliveriesWildcard, DeliverySchedWildcard},
		retention:     jetstream.WorkQueuePolicy,
		duplicates:    DuplicateWindow,
		atomicPublish: true,
		schedules:     true,
		ttl:           true,
	},
	{
		name:          StreamAttempts,
		description:   "Every delivery attempt with status, latency and error class",
		subjects:      []string{AttemptsWildcard},
		retention:     jetstream.LimitsPolicy,
		maxAge:        30 * 24 * time.Hour,
		duplicates:    DuplicateWindow,
		atomicPublish: true,
	},
	{
		name:        StreamChanges,
		description: "Registry changes with actor, time and redacted diff",
		subjects:    []string{ChangesWildcard},
		retention:   jetstream.LimitsPolicy,
		maxAge:      30 * 24 * time.Hour,
		duplicates:  DuplicateWindow,
	},
	{
		name:        StreamAudit,
		description: "Per-tenant hash-chained audit trail",
		subjects:    []string{AuditWildcard},
		retention:   jetstream.LimitsPolicy,
		maxAge:      365 * 24 * time.Hour,
		duplicates:  DuplicateWindow,
	},
	{
		// One message per subject: re-arming a timer replaces its
		// schedule rather than adding a second one.
		name:          StreamTimers,
		description:   "Engine timers: schedules and fired timers",
		subjects:      []string{TimersWildcard, TimerSchedulesWildcard},
		retention:     jetstream.LimitsPolicy,
		maxAge:        30 * 24 * time.Hour,
		duplicates:    DuplicateWindow,
		schedules:     true,
		ttl:           true,
		rollup:        true,
		maxPerSubject: 1,
	},
	{
		name:        StreamDeadLetters,
		description: "Poison messages set aside by the consumer that could not handle them",
		subjects:    []string{DeadLettersWildcard},
		retention:   jetstream.LimitsPolicy,
		maxAge:      30 * 24 * time.Hour,
		duplicates:  DuplicateWindow,
	},
}

// config builds the stream's JetStream config on topology t.
func (s streamSpec) config(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               s.name,
		Description:        s.description,
		Subjects:           append([]string(nil), s.subjects...),
		Retention:          s.retention,
		MaxAge:             s.maxAge,
		Storage:            t.Storage,
		Replicas:           t.replicas(),
		Duplicates:         s.duplicates,
		Discard:            s.discard,
		AllowAtomicPublish: s.atomicPublish,
		AllowMsgSchedules:  s.schedules,
		AllowMsgTTL:        s.ttl,
		AllowRollup:        s.rollup,
		MaxMsgsPerSubject:  s.maxPerSubject,
	}
}

// stream returns the config of the named stream. The names are this
// package's constants, so a miss is a programming error.
func stream(name string, t Topology) jetstream.StreamConfig {
	for _, s := range streamTable {
		if s.name == name {
			return s.config(t)
		}
	}
	panic("contract: no stream " + name)
}

// EventsStream holds accepted raw events. Written by the collector.
func EventsStream(t Topology) jetstream.StreamConfig { return stream(StreamEvents, t) }

// NotificationsStream holds the notifications derived from events. Written
// by the engine (and by the dispatcher for subscription.disabled).
func NotificationsStream(t Topology) jetstream.StreamConfig { return stream(StreamNotifications, t) }

// DeliveriesStream is the work queue of (notification, subscription) pairs.
// Retries are scheduled messages on deliveries-scheduled.>, so that a pair
// waiting hours for its next attempt occupies no consumer's ack window.
func DeliveriesStream(t Topology) jetstream.StreamConfig { return stream(StreamDeliveries, t) }

// AttemptsStream records every HTTP attempt. Written by the dispatcher.
func AttemptsStream(t Topology) jetstream.StreamConfig { return stream(StreamAttempts, t) }

// ChangesStream records registry changes. Written by the registry.
func ChangesStream(t Topology) jetstream.StreamConfig { return stream(StreamChanges, t) }

// AuditStream holds the per-tenant hash-chained trail. Written by audit.
func AuditStream(t Topology) jetstream.StreamConfig { return stream(StreamAudit, t) }

// TimersStream holds the engine's durable timers (operation deadlines, alert
// reminders) as scheduled messages, and the fired timers on timers.>.
func TimersStream(t Topology) jetstream.StreamConfig { return stream(StreamTimers, t) }

// DeadLettersStream keeps the messages whose handler panicked, copied aside
// with the reason before the original was terminated, so that one poison
// message never stops a consumer and is never lost. Written by every
// consuming service (each ensures it), read by audit.
func DeadLettersStream(t Topology) jetstream.StreamConfig { return stream(StreamDeadLetters, t) }

// AllStreams lists every stream config, for provisioning tools and tests.
func AllStreams(t Topology) []jetstream.StreamConfig {
	out := make([]jetstream.StreamConfig, 0, len(streamTable))
	for _, s := range streamTable {
		out = append(out, s.config(t))
	}
	return out
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
		cfg.Description = "Hashed tenant API keys; written by the collector (its keystore), read by every API"
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

// Package engine is the alert-state engine. It reads raw events from EVENTS
// (durable consumer "engine") and fired timers from TIMERS (durable consumer
// "engine-timers"), keeps alert and operation state in the KV buckets
// "alerts" and "operations", and writes notifications to NOTIFICATIONS and
// deadline timers to TIMERS. It owns NOTIFICATIONS, TIMERS and both buckets;
// it reads the "tenants" bucket for per-tenant settings. Its HTTP API
// (api.go) reads the buckets back: a tenant's alerts with their recent
// transitions, and one operation's state by protocol UUID.
//
// Exactly-once effect. Every transition is a KV compare-and-set on the
// alert's or operation's record, and the notifications it causes are stored
// in the same write (Record.Pending) before they are published:
//
//  1. read the record (revision r);
//  2. publish whatever is still pending in it (a previous attempt that
//     crashed between its write and its publish);
//  3. apply the input with the pure machine (package alertfsm); an input
//     whose event id is in the record's processed list changes nothing;
//  4. write the record with its new pending notifications, Create or
//     Update(r); on a revision conflict go back to 1 (re-read, re-apply,
//     never drop);
//  5. publish the pending notifications with Nats-Msg-Id = notification id;
//  6. clear Pending with another CAS (a conflict here means someone else
//     already wrote a newer revision, after flushing it in step 2).
//
// Publishing first would double-send when the CAS then loses a race;
// writing first without Pending would lose the notification on a crash.
// With Pending, a crash at any point is repaired by the redelivery of the
// input (or the next input for the same key), and a republish within the
// stream's duplicate window is dropped by its deterministic Nats-Msg-Id.
// Notification ids and contents depend only on the record and the input, so
// two instances racing on one key produce identical messages.
//
// Timers (operation deadlines, alert reminders, flap-damping holds) are
// nats-server message schedules: a message on
// timer-schedules.<tenant>.<kind>.<key> with Nats-Schedule @at and a target
// timers.<tenant>.<kind>.<key>. The server keeps it in the TIMERS stream and
// publishes the target at the due time whether or not an engine runs; the
// fired message waits in TIMERS for the engine-timers consumer, and its
// effect is one more CAS transition, so it acts once with any number of
// instances.
package engine

import (
	"context"
	"errors"
	"fmt"
	"github.com/heraldhq/herald/services/internal/telemetry"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// Config is the engine's settings.
type Config struct {
	// Workers is the number of events handled concurrently per consumer
	// (HERALD_ENGINE_WORKERS, default 128). Order between events does not
	// depend on it: every transition is a compare-and-set, and the alert
	// state machine takes events in any order. More workers let more
	// notifications share one fsync (the notifications Batcher).
	Workers int
	// OperationDeadline is the default deadline of an operation when neither
	// the request nor the tenant says otherwise
	// (HERALD_ENGINE_OPERATION_DEADLINE, default 1h).
	OperationDeadline time.Duration
	// DeadlineOverride, when set, replaces every operation deadline (tests;
	// HERALD_ENGINE_DEADLINE_OVERRIDE).
	DeadlineOverride time.Duration
}

// ConfigFromEnv reads HERALD_ENGINE_* variables.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Workers: 128, OperationDeadline: time.Hour}
	env := service.NewEnvReader(getenv)
	env.Int("HERALD_ENGINE_WORKERS", &c.Workers)
	env.Duration("HERALD_ENGINE_OPERATION_DEADLINE", &c.OperationDeadline)
	env.Duration("HERALD_ENGINE_DEADLINE_OVERRIDE", &c.DeadlineOverride)
	return c, errors.Join(env.Err(), c.Validate())
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("engine workers %d: want 1..256", c.Workers))
	}
	if c.OperationDeadline < time.Second {
		errs = append(errs, fmt.Errorf("operation deadline %s: want at least 1s (timer granularity)", c.OperationDeadline))
	}
	if c.DeadlineOverride < 0 {
		errs = append(errs, errors.New("deadline override must not be negative"))
	}
	return errors.Join(errs...)
}

// Service is the alert-state engine.
type Service struct {
	metrics *telemetry.Metrics
	cfg     Config
	js      jetstream.JetStream
	log     *slog.Logger
	topo    contract.Topology
	auth    apiauth.Authenticator
	alerts  jetstream.KeyValue
	ops     jetstream.KeyValue
	tenants atomic.Pointer[jetstream.KeyValue]
	ready   atomic.Bool
	// notifications is where notifications are published: a Batcher that
	// group-commits them when the engine has its own connection.
	notifications bus.Publisher
	batcher       *bus.Batcher
}

// New returns an engine; Run provisions and starts it.
func New(cfg Config, deps service.Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.JS == nil {
		return nil, errors.New("engine: no JetStream")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, js: deps.JS, log: log.With("service", "engine"), topo: deps.Topology, auth: deps.Auth, metrics: deps.Metrics, notifications: deps.JS}
	if s.batcher = deps.Batcher(contract.StreamNotifications, s.log); s.batcher != nil {
		s.notifications = s.batcher
	}
	return s, nil
}

// Name implements service.Service.
func (s *Service) Name() string { return "engine" }

// Ready is nil once streams, buckets and consumers are provisioned.
func (s *Service) Ready() error {
	if !s.ready.Load() {
		return errors.New("engine: provisioning")
	}
	return nil
}

// Run ensures NOTIFICATIONS, TIMERS, the alerts and operations buckets and
// both durable consumers, then consumes until ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	if err := bus.EnsureStreams(ctx, s.js, contract.NotificationsStream(s.topo), contract.TimersStream(s.topo), contract.DeadLettersStream(s.topo)); err != nil {
		return err
	}
	var err error
	if s.alerts, err = bus.EnsureBucket(ctx, s.js, contract.Bucket(contract.BucketAlerts, s.topo)); err != nil {
		return err
	}
	if s.ops, err = bus.EnsureBucket(ctx, s.js, contract.Bucket(contract.BucketOperations, s.topo)); err != nil {
		return err
	}
	events, err := bus.EnsureConsumer(ctx, s.js, contract.StreamEvents, contract.EngineConsumer())
	if err != nil {
		return err
	}
	timers, err := bus.EnsureConsumer(ctx, s.js, contract.StreamTimers, contract.EngineTimersConsumer())
	if err != nil {
		return err
	}
	if s.batcher != nil {
		// Stopped after the consumers (deferred first, runs last): their
		// in-flight handlers still publish through it.
		bctx, stopBatcher := context.WithCancel(context.WithoutCancel(ctx))
		batcherDone := make(chan struct{})
		go func() { defer close(batcherDone); _ = s.batcher.Run(bctx) }()
		defer func() { stopBatcher(); <-batcherDone }()
	}
	s.ready.Store(true)
	defer s.ready.Store(false)
	// The first consume loop to fail stops the other.
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	run := func(c jetstream.Consumer, h bus.Handler, name string) {
		err := bus.Consume(ctx, c, h, bus.ConsumeOptions{Workers: s.cfg.Workers, Consumer: name, Logger: s.log,
			DeadLetters: s.js, OnPoison: s.metrics.Poisoned})
		cancel()
		errc <- err
	}
	go run(events, s.handleEvent, contract.ConsumerEngine)
	go run(timers, s.handleTimer, contract.ConsumerEngineTimers)
	err = errors.Join(<-errc, <-errc)
	if parent.Err() != nil {
		return nil
	}
	return err
}

// Package dispatcher fans notifications out to subscriptions (plan) and
// posts each (notification, subscription) pair to its endpoint (deliver).
//
// Plan reads NOTIFICATIONS with the durable "dispatcher-plan" and publishes
// one DELIVERIES message per matching subscription, with Nats-Msg-Id
// notificationID:subscriptionID so that a re-planned notification is
// deduplicated by JetStream.
//
// Deliver reads DELIVERIES with the one durable "dispatcher-deliver" that
// every instance shares. Exactly-once recording rests on the delivery-state
// record of each pair (bucket delivery-state, key sha256 of the pair):
// it is claimed with KV Create, or a CAS Update of an expired lease or a
// scheduled retry, before any POST. A pair recorded delivered or
// dead-lettered is acked without a POST; a message whose attempt number is
// not newer than the record's is a stale duplicate and is acked too. Retries
// are scheduled messages on deliveries-scheduled.>, so a pair waiting hours
// holds no slot of the consumer's ack-pending window.
//
// Ordering per alert: the dispatcher does not serialise deliveries (that
// would let one failing POST hold back every later one), so a receiver may
// see an alert's resolved before its opened when the first POST was
// retried. Receivers tell the order by data.sequence (payload.Alert.Sequence,
// +1 per notification of the alert) and ignore anything older than what
// they have seen; webhook-id dedups repeats.
package dispatcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/heraldhq/herald/services/internal/telemetry"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/secretbox"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// DefaultSchedule is the delay before each attempt: the first is immediate.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Config is the dispatcher's settings.
type Config struct {
	// Workers posting concurrently per instance (HERALD_DISPATCHER_WORKERS,
	// 128). A hung endpoint holds at most EndpointConcurrency of them for
	// a timeout each, so there are many more workers than one endpoint's
	// slots; a worker is a goroutine and costs little while it waits.
	Workers int
	// PlanWorkers handling notifications concurrently (HERALD_DISPATCHER_PLAN_WORKERS,
	// 128): each waits for its pairs' batch, so a stage goes as fast as its
	// concurrency over that wait.
	PlanWorkers int
	// Timeout of one HTTP attempt (HERALD_DISPATCHER_TIMEOUT, 15s).
	Timeout time.Duration
	// Schedule is the delay before attempt i+1 (HERALD_DISPATCHER_SCHEDULE,
	// comma-separated durations). Scheduled messages fire with 1s granularity.
	Schedule []time.Duration
	// Jitter is the relative spread of each delay (HERALD_DISPATCHER_JITTER, 0.2).
	Jitter float64
	// AllowCIDRs are ranges the SSRF guard lets through
	// (HERALD_DISPATCHER_ALLOW_CIDRS, comma-separated).
	AllowCIDRs []netip.Prefix
	// EndpointConcurrency caps in-flight POSTs per endpoint host
	// (HERALD_DISPATCHER_ENDPOINT_CONCURRENCY, 8).
	EndpointConcurrency int
	// BreakerFailures consecutive failures open an endpoint's breaker for
	// BreakerCooldown (HERALD_DISPATCHER_BREAKER_FAILURES 5, _BREAKER_COOLDOWN 30s).
	BreakerFailures int
	BreakerCooldown time.Duration
	// DisableAfter: an endpoint failing continuously this long is disabled
	// (HERALD_DISPATCHER_DISABLE_AFTER, 120h).
	DisableAfter time.Duration
	// ShutdownGrace is how long in-flight POSTs may run after a stop before
	// they are abandoned and their pairs handed to another instance
	// (HERALD_DISPATCHER_SHUTDOWN_GRACE, 10s).
	ShutdownGrace time.Duration
	// InstanceID names this instance in leases (HERALD_DISPATCHER_INSTANCE, random).
	InstanceID string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Workers: 128, PlanWorkers: 128, Timeout: 15 * time.Second,
		Schedule: append([]time.Duration(nil), DefaultSchedule...), Jitter: 0.2,
		EndpointConcurrency: 8, BreakerFailures: 5, BreakerCooldown: 30 * time.Second,
		DisableAfter: 5 * 24 * time.Hour, ShutdownGrace: 10 * time.Second,
	}
}

// ConfigFromEnv reads HERALD_DISPATCHER_* variables.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	var errs []error
	env := service.NewEnvReader(getenv)
	env.Int("HERALD_DISPATCHER_WORKERS", &c.Workers)
	env.Int("HERALD_DISPATCHER_PLAN_WORKERS", &c.PlanWorkers)
	env.Int("HERALD_DISPATCHER_ENDPOINT_CONCURRENCY", &c.EndpointConcurrency)
	env.Int("HERALD_DISPATCHER_BREAKER_FAILURES", &c.BreakerFailures)
	env.Duration("HERALD_DISPATCHER_TIMEOUT", &c.Timeout)
	env.Duration("HERALD_DISPATCHER_BREAKER_COOLDOWN", &c.BreakerCooldown)
	env.Duration("HERALD_DISPATCHER_DISABLE_AFTER", &c.DisableAfter)
	env.Duration("HERALD_DISPATCHER_SHUTDOWN_GRACE", &c.ShutdownGrace)
	env.Float("HERALD_DISPATCHER_JITTER", &c.Jitter)
	errs = append(errs, env.Err())
	if v := getenv("HERALD_DISPATCHER_SCHEDULE"); v != "" {
		c.Schedule = nil
		for _, p := range strings.Split(v, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(p))
			if err != nil {
				errs = append(errs, fmt.Errorf("HERALD_DISPATCHER_SCHEDULE %q: %w", p, err))
			}
			c.Schedule = append(c.Schedule, d)
		}
	}
	if v := getenv("HERALD_DISPATCHER_ALLOW_CIDRS"); v != "" {
		for _, p := range strings.Split(v, ",") {
			pf, err := netip.ParsePrefix(strings.TrimSpace(p))
			if err != nil {
				errs = append(errs, fmt.Errorf("HERALD_DISPATCHER_ALLOW_CIDRS %q: %w", p, err))
				continue
			}
			c.AllowCIDRs = append(c.AllowCIDRs, pf)
		}
	}
	c.InstanceID = getenv("HERALD_DISPATCHER_INSTANCE")
	return c, errors.Join(append(errs, c.Validate())...)
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 || c.Workers > 1024 {
		errs = append(errs, fmt.Errorf("dispatcher workers %d: want 1..1024", c.Workers))
	}
	if c.PlanWorkers < 1 || c.PlanWorkers > 256 {
		errs = append(errs, fmt.Errorf("dispatcher plan workers %d: want 1..256", c.PlanWorkers))
	}
	// The lease and InProgress cadence assume an attempt ends well inside AckWait.
	if c.Timeout < 100*time.Millisecond || c.Timeout > contract.DelivererAckWait/2 {
		errs = append(errs, fmt.Errorf("dispatcher timeout %s: want 100ms..%s", c.Timeout, contract.DelivererAckWait/2))
	}
	if len(c.Schedule) < 1 {
		errs = append(errs, errors.New("dispatcher schedule is empty"))
	}
	for _, d := range c.Schedule {
		if d < 0 {
			errs = append(errs, fmt.Errorf("dispatcher schedule step %s is negative", d))
		}
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("dispatcher jitter %v: want 0..1", c.Jitter))
	}
	if c.EndpointConcurrency < 1 {
		errs = append(errs, fmt.Errorf("endpoint concurrency %d: want at least 1", c.EndpointConcurrency))
	}
	if c.BreakerFailures < 1 || c.BreakerCooldown <= 0 {
		errs = append(errs, errors.New("breaker failures and cooldown must be positive"))
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, errors.New("shutdown grace must not be negative"))
	}
	if c.DisableAfter <= 0 {
		errs = append(errs, errors.New("disable-after must be positive"))
	}
	return errors.Join(errs...)
}

// Service is the dispatcher.
type Service struct {
	metrics  *telemetry.Metrics
	filters  filterCache
	cfg      Config
	js       jetstream.JetStream
	log      *slog.Logger
	topo     contract.Topology
	keys     *secretbox.Keyring
	auth     apiauth.Authenticator
	instance string
	lease    time.Duration

	index   *index
	sender  *sender
	breaker *breakers
	limits  *limiters

	// Group committers (bus.Batcher): the pairs of the plan, the attempt
	// records and the pair records each share fsyncs across workers.
	deps                       service.Deps
	pairs, attemptLog, records *bus.Batcher

	state      jetstream.KeyValue
	health     jetstream.KeyValue
	healthSeen *healthCache
	subs       jetstream.KeyValue
	ready      atomic.Bool
	// abort ends ShutdownGrace after Run's context, cutting in-flight POSTs.
	abort context.Context
}

// New returns a dispatcher; Run provisions and starts it.
func New(cfg Config, deps service.Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.JS == nil || deps.NC == nil || deps.Keys == nil {
		return nil, errors.New("dispatcher: a NATS connection, JetStream and a keyring are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	id := cfg.InstanceID
	if id == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		id = "d-" + hex.EncodeToString(b)
	}
	s := &Service{
		cfg: cfg, js: deps.JS, deps: deps, log: log.With("service", "dispatcher"), topo: deps.Topology, metrics: deps.Metrics,
		keys: deps.Keys, auth: deps.Auth, instance: id,
		// The lease outlives one attempt plus bookkeeping, and is shorter
		// than AckWait so a takeover never races a live owner.
		lease:      cfg.Timeout + 10*time.Second,
		index:      newIndex(),
		breaker:    newBreakers(cfg.BreakerFailures, cfg.BreakerCooldown),
		limits:     newLimiters(),
		healthSeen: newHealthCache(),
	}
	s.sender = newSender(cfg, deps.Keys)
	return s, nil
}

// Name implements service.Service.
func (s *Service) Name() string { return "dispatcher" }

// Ready is nil once buckets, streams, consumers and the index are loaded.
func (s *Service) Ready() error {
	if !s.ready.Load() {
		return errors.New("dispatcher: provisioning")
	}
	return nil
}

// Run ensures DELIVERIES, ATTEMPTS and the dispatcher's buckets, loads the
// subscription index, then plans and delivers until ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	if err := bus.EnsureStreams(ctx, s.js, contract.DeliveriesStream(s.topo), contract.AttemptsStream(s.topo), contract.DeadLettersStream(s.topo)); err != nil {
		return err
	}
	var err error
	if s.state, err = bus.EnsureBucket(ctx, s.js, contract.Bucket(contract.BucketDeliveryState, s.topo)); err != nil {
		return err
	}
	if err := bus.AllowAtomicPublish(ctx, s.js, stateStream); err != nil {
		return err
	}
	if s.health, err = bus.EnsureBucket(ctx, s.js, contract.Bucket(contract.BucketEndpointHealth, s.topo)); err != nil {
		return err
	}
	if s.subs, err = bus.WaitForBucket(ctx, s.js, contract.BucketSubscriptions); err != nil {
		return err
	}
	tenants, err := bus.WaitForBucket(ctx, s.js, contract.BucketTenants)
	if err != nil {
		return err
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchErr := make(chan error, 1)
	loaded := make(chan struct{})
	go func() { watchErr <- s.index.watch(ctx, s.subs, tenants, loaded, s.log) }()
	select {
	case <-loaded:
	case err := <-watchErr:
		return err
	case <-ctx.Done():
		return nil
	}
	plan, err := bus.EnsureConsumer(ctx, s.js, contract.StreamNotifications, contract.PlannerConsumer())
	if err != nil {
		return err
	}
	deliver, err := bus.EnsureConsumer(ctx, s.js, contract.StreamDeliveries, contract.DelivererConsumer())
	if err != nil {
		return err
	}
	abort, abortNow := context.WithCancel(context.WithoutCancel(ctx))
	defer abortNow()
	stopAbort := context.AfterFunc(ctx, func() { time.AfterFunc(s.cfg.ShutdownGrace, abortNow) })
	defer stopAbort()
	s.abort = abort
	stopBreakers, err := s.metrics.ObserveBreakersOpen(func() int64 { return int64(s.breaker.open(time.Now())) })
	if err != nil {
		return err
	}
	defer stopBreakers()
	s.ready.Store(true)
	defer s.ready.Store(false)
	// The batchers outlive the consumers: a handler still settling during
	// the drain gets its records stored, then the batchers stop.
	bctx, stopBatchers := context.WithCancel(context.WithoutCancel(ctx))
	s.pairs = s.deps.Batcher(contract.StreamDeliveries, s.log)
	s.attemptLog = s.deps.Batcher(contract.StreamAttempts, s.log)
	s.records = s.deps.Batcher(stateStream, s.log)
	var batchers sync.WaitGroup
	for _, b := range []*bus.Batcher{s.pairs, s.attemptLog, s.records} {
		batchers.Add(1)
		go func() { defer batchers.Done(); _ = b.Run(bctx) }()
	}
	defer func() { stopBatchers(); batchers.Wait() }()
	errc := make(chan error, 2)
	run := func(c jetstream.Consumer, h bus.Handler, o bus.ConsumeOptions) {
		o.Logger, o.DeadLetters, o.OnPoison = s.log, s.js, s.metrics.Poisoned
		err := bus.Consume(ctx, c, h, o)
		cancel()
		errc <- err
	}
	go run(plan, s.handlePlan, bus.ConsumeOptions{Workers: s.cfg.PlanWorkers, Consumer: contract.ConsumerPlanner})
	// The deliverer acks without waiting for the server: a redelivery of a
	// pair it settled (an ack lost on the way) finds the pair's record
	// delivered or dead-lettered and is acked without a POST, and one it
	// turned away (rescheduled, released) is judged afresh against the
	// record, which only a claim lets through to a POST.
	go run(deliver, s.handleDelivery, bus.ConsumeOptions{Workers: s.cfg.Workers, Consumer: contract.ConsumerDeliverer, AckNoWait: true})
	err = errors.Join(<-errc, <-errc)
	cancel()
	if werr := <-watchErr; werr != nil && parent.Err() == nil {
		err = errors.Join(err, werr)
	}
	if parent.Err() != nil {
		return nil
	}
	return err
}

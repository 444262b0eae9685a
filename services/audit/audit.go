// Package audit keeps Herald's tamper-evident trail: one hash chain per
// tenant (package auditchain) on the AUDIT stream, fed by durable consumers on
// EVENTS, NOTIFICATIONS, ATTEMPTS and CHANGES (and DEADLETTERS, the poison
// messages any consumer set aside), with the chain heads in the
// audit-heads bucket. It serves the delivery log, the audit query and the
// chain verification over HTTP.
//
// Reads: EVENTS, NOTIFICATIONS, ATTEMPTS, CHANGES (contract.AuditConsumers).
// Writes: AUDIT (audit.<tenant>) and KV audit-heads, both owned here.
//
// Queries are served from an in-memory index of stream sequences, rebuilt
// at start by an ordered consumer over AUDIT and kept current by following
// the stream (so it also sees what other audit instances append). The
// records themselves stay in JetStream and are fetched by sequence with
// GetMsg. The alternative, a subject-filtered scan of audit.<tenant> from a
// start time, needs no memory but costs every record of the tenant in the
// time range per query: measured ~12 µs per record scanned (1.3 s per query
// at 100k records, so ~13 s at 1M, extrapolated), against 1-4 ms for a page
// of 10 records with the index (one GetMsg each, independent of the trail's
// size). The index costs ~240 bytes per record (~240 MB at 1M, measured)
// and ~8 µs of CPU per record to rebuild at start, plus reading the stream
// (~12 µs per record); Ready stays false until the rebuild has caught up.
// See bench_test.go.
//
// Retention is per tenant (30 days by default, at most the AUDIT stream's
// MaxAge): an hourly purge removes a prefix of the tenant's chain after
// storing the last removed record's seq and hash as the tenant's retention
// checkpoint in audit-heads (key "<tenant>.checkpoint"). Verify starts at
// the first remaining record and checks its prevHash against that
// checkpoint, so expiry never breaks verification while a deleted oldest
// record still does. Records JetStream itself drops at MaxAge, without the
// purge, would be reported as missing.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// Config is the audit service's own settings.
type Config struct {
	// Retention is how long a tenant's records are kept
	// (HERALD_AUDIT_RETENTION, default 720h = 30 days).
	Retention time.Duration
	// TenantRetention overrides Retention per tenant
	// (HERALD_AUDIT_RETENTION_TENANTS="acme=2160h,beta=24h").
	TenantRetention map[string]time.Duration
	// PurgeInterval is how often expired records are purged
	// (HERALD_AUDIT_PURGE_INTERVAL, default 1h).
	PurgeInterval time.Duration
}

// ConfigFromEnv reads HERALD_AUDIT_* variables.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Retention: 30 * 24 * time.Hour, PurgeInterval: time.Hour, TenantRetention: map[string]time.Duration{}}
	env := service.NewEnvReader(getenv)
	env.Duration("HERALD_AUDIT_RETENTION", &c.Retention)
	env.Duration("HERALD_AUDIT_PURGE_INTERVAL", &c.PurgeInterval)
	errs := []error{env.Err()}
	if v := getenv("HERALD_AUDIT_RETENTION_TENANTS"); v != "" {
		for _, kv := range strings.Split(v, ",") {
			t, ds, ok := strings.Cut(strings.TrimSpace(kv), "=")
			d, err := time.ParseDuration(ds)
			if !ok || err != nil || contract.ValidateToken(t) != nil {
				errs = append(errs, fmt.Errorf("HERALD_AUDIT_RETENTION_TENANTS: bad entry %q, want tenant=duration", kv))
				continue
			}
			c.TenantRetention[t] = d
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	// The AUDIT stream's MaxAge is the ceiling: JetStream drops older
	// records whatever a tenant's setting says.
	ceiling := contract.AuditStream(contract.DefaultTopology).MaxAge
	if c.Retention < time.Hour || c.Retention > ceiling {
		errs = append(errs, fmt.Errorf("audit retention must be between 1h and %s", ceiling))
	}
	if c.PurgeInterval <= 0 {
		errs = append(errs, errors.New("audit purge interval must be positive"))
	}
	for t, d := range c.TenantRetention {
		if d < time.Hour || d > ceiling {
			errs = append(errs, fmt.Errorf("audit retention of tenant %s must be between 1h and %s", t, ceiling))
		}
	}
	return errors.Join(errs...)
}

func (c Config) retention(tenant string) time.Duration {
	if d, ok := c.TenantRetention[tenant]; ok {
		return d
	}
	return c.Retention
}

// Service is the audit service.
type Service struct {
	cfg   Config
	deps  service.Deps
	log   *slog.Logger
	ready atomic.Bool

	stream jetstream.Stream
	heads  jetstream.KeyValue
	idx    *index

	mu      sync.Mutex
	locks   map[string]*sync.Mutex // one appender per tenant in this process
	headsMu sync.Mutex
	cache   map[string]cachedHead
}

// New builds the service; Run provisions and starts it.
func New(cfg Config, deps service.Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.JS == nil {
		return nil, errors.New("audit: deps.JS is nil")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, deps: deps, log: deps.Logger, idx: newIndex(),
		locks: map[string]*sync.Mutex{}, cache: map[string]cachedHead{}}, nil
}

// Name implements service.Service.
func (s *Service) Name() string { return "audit" }

// Ready is nil once the AUDIT stream and heads bucket exist and the index
// has caught up with the stream as it was at start.
func (s *Service) Ready() error {
	if !s.ready.Load() {
		return errors.New("audit: not provisioned yet")
	}
	return nil
}

// Run ensures AUDIT and audit-heads, rebuilds the index, and consumes the
// four pipeline inputs and DEADLETTERS until ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	js := s.deps.JS
	if err := bus.EnsureStreams(ctx, js, contract.AuditStream(s.deps.Topology), contract.DeadLettersStream(s.deps.Topology)); err != nil {
		return err
	}
	st, err := js.Stream(ctx, contract.StreamAudit)
	if err != nil {
		return fmt.Errorf("audit: open stream: %w", err)
	}
	s.stream = st
	if s.heads, err = bus.EnsureBucket(ctx, js, contract.Bucket(contract.BucketAuditHeads, s.deps.Topology)); err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("audit: stream info: %w", err)
	}
	caughtUp := make(chan struct{})
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.follow(gctx, info.State.LastSeq, caughtUp) })
	select {
	case <-caughtUp:
	case <-gctx.Done():
		return g.Wait()
	}
	s.ready.Store(true)
	s.log.InfoContext(ctx, "audit index rebuilt", "records", info.State.Msgs)

	handlers := map[string]bus.Handler{
		contract.StreamEvents:        s.handleEvent,
		contract.StreamNotifications: s.handleNotification,
		contract.StreamAttempts:      s.handleAttempt,
		contract.StreamChanges:       s.handleChange,
		contract.StreamDeadLetters:   s.handleDeadLetter,
	}
	for stream, cfg := range contract.AuditConsumers() {
		h := handlers[stream]
		g.Go(func() error {
			// Consume returns early if the durable is deleted under it
			// (an operator reset); ensure it again and go on.
			for gctx.Err() == nil {
				c, err := bus.EnsureConsumer(gctx, js, stream, cfg)
				if err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return err
				}
				if err := bus.Consume(gctx, c, h, bus.ConsumeOptions{Consumer: cfg.Durable, Logger: s.log,
					DeadLetters: js, OnPoison: s.deps.Metrics.Poisoned}); err != nil {
					return err
				}
				select {
				case <-gctx.Done():
				case <-time.After(time.Second):
				}
			}
			return nil
		})
	}
	g.Go(func() error { s.purgeLoop(gctx); return nil })
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// follow indexes every AUDIT record, from the first, and closes caughtUp
// once it has seen startSeq.
func (s *Service) follow(ctx context.Context, startSeq uint64, caughtUp chan struct{}) error {
	var once sync.Once
	done := func() { once.Do(func() { close(caughtUp) }) }
	if startSeq == 0 {
		done()
	}
	c, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("audit: follow AUDIT: %w", err)
	}
	it, err := c.Messages()
	if err != nil {
		return fmt.Errorf("audit: follow AUDIT: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			s.log.WarnContext(ctx, "audit follow failed; retrying", "error", err)
			continue
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		if err := s.idx.add(meta.Sequence.Stream, msg.Data()); err != nil {
			s.log.WarnContext(ctx, "unindexable audit record", "seq", meta.Sequence.Stream, "error", err)
		}
		if meta.Sequence.Stream >= startSeq || meta.NumPending == 0 {
			done()
		}
	}
}

func (s *Service) tenantLock(tenant string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.locks[tenant]
	if !ok {
		l = &sync.Mutex{}
		s.locks[tenant] = l
	}
	return l
}

func sourceKey(stream string, seq uint64) string { return stream + ":" + strconv.FormatUint(seq, 10) }

// Package collector is Herald's front door. It accepts CloudEvents over HTTP
// (structured, binary and batch modes), raw webhooks of known sources
// through adapters, and single CloudEvents over NATS request/reply on
// herald.ingest.<tenant>; it validates them and stores each on the EVENTS
// stream (which it owns) under events.<tenant>.<type>, answering only after
// the JetStream ack. It reads the "tenants" bucket (owned by the registry)
// and owns the "api-keys" bucket behind the tenant API key routes.
//
// Unknown event types (no schema in schemas/) are accepted when the
// operator allows them (HERALD_COLLECTOR_ALLOW_UNKNOWN_TYPES, default true)
// or the tenant's Settings.AllowUnknownTypes is set; otherwise they are
// rejected. Known types' data is always validated against its schema.
package collector

import (
	"context"
	"errors"
	"fmt"
	"github.com/heraldhq/herald/services/internal/telemetry"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/secretbox"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// Config is the collector's settings.
type Config struct {
	// MaxBodyBytes caps a request body (HERALD_COLLECTOR_MAX_BODY_BYTES, default 1 MiB).
	MaxBodyBytes int64
	// MaxBatch caps the events of one batch (HERALD_COLLECTOR_MAX_BATCH, default 500).
	MaxBatch int
	// RateLimit is the default events per second per tenant
	// (HERALD_COLLECTOR_RATE_LIMIT, default 1000); a tenant's
	// Settings.IngestRateLimit overrides it.
	RateLimit float64
	// AllowUnknownTypes accepts types without a schema for every tenant
	// (HERALD_COLLECTOR_ALLOW_UNKNOWN_TYPES, default true).
	AllowUnknownTypes bool
	// PublishTimeout bounds the tenant lookup and the JetStream acks of one
	// request; past it the caller gets 503 (HERALD_COLLECTOR_PUBLISH_TIMEOUT, default 10s).
	PublishTimeout time.Duration
}

// DefaultConfig is the configuration with every default.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 1 << 20, MaxBatch: 500, RateLimit: 1000, AllowUnknownTypes: true, PublishTimeout: 10 * time.Second}
}

// ConfigFromEnv reads HERALD_COLLECTOR_* variables.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	env := service.NewEnvReader(getenv)
	env.Parse("HERALD_COLLECTOR_MAX_BODY_BYTES", func(v string) (err error) { c.MaxBodyBytes, err = strconv.ParseInt(v, 10, 64); return })
	env.Int("HERALD_COLLECTOR_MAX_BATCH", &c.MaxBatch)
	env.Float("HERALD_COLLECTOR_RATE_LIMIT", &c.RateLimit)
	env.Bool("HERALD_COLLECTOR_ALLOW_UNKNOWN_TYPES", &c.AllowUnknownTypes)
	env.Duration("HERALD_COLLECTOR_PUBLISH_TIMEOUT", &c.PublishTimeout)
	return c, errors.Join(env.Err(), c.Validate())
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("collector max body %d: want at least 1024 bytes", c.MaxBodyBytes))
	}
	if c.MaxBatch < 1 {
		errs = append(errs, fmt.Errorf("collector max batch %d: want at least 1", c.MaxBatch))
	}
	if c.RateLimit <= 0 {
		errs = append(errs, fmt.Errorf("collector rate limit %g: want > 0 events/s", c.RateLimit))
	}
	if c.PublishTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("collector publish timeout %s: want at least 100ms", c.PublishTimeout))
	}
	return errors.Join(errs...)
}

// Service is the collector.
type Service struct {
	metrics *telemetry.Metrics
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	topo    contract.Topology
	auth    apiauth.Authenticator
	keyring *secretbox.Keyring
	limits  *limiter
	// events group-commits EVENTS writes across concurrent requests: each
	// request still answers only once its events are stored.
	events *bus.Batcher

	tenants atomic.Pointer[jetstream.KeyValue]
	keys    atomic.Pointer[keyStore]
	ready   atomic.Bool
}

// New returns a collector; Run provisions and starts it.
func New(cfg Config, deps service.Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.JS == nil || deps.NC == nil {
		return nil, errors.New("collector: no NATS connection")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	// Tenant API keys always work on the collector's routes, whatever the
	// composition root chained into deps.Auth.
	auth := apiauth.Chain{deps.Auth, service.NewKeyAuthenticator(deps.JS)}
	return &Service{
		metrics: deps.Metrics,
		cfg:     cfg, nc: deps.NC, js: deps.JS, log: log.With("service", "collector"), topo: deps.Topology,
		auth: auth, keyring: deps.Keys, limits: newLimiter(cfg.RateLimit, cfg.MaxBatch),
		events: deps.Batcher(contract.StreamEvents, log),
	}, nil
}

// Name implements service.Service.
func (s *Service) Name() string { return "collector" }

// Ready is nil once EVENTS and api-keys are ensured and the tenants bucket
// is open.
func (s *Service) Ready() error {
	if !s.ready.Load() {
		return errors.New("collector: provisioning")
	}
	return nil
}

// Run ensures EVENTS and the api-keys bucket, waits for the registry's
// tenants bucket, serves ingest requests, and returns nil when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if err := bus.EnsureStreams(ctx, s.js, contract.EventsStream(s.topo)); err != nil {
		return err
	}
	keys, err := bus.EnsureBucket(ctx, s.js, contract.Bucket(contract.BucketAPIKeys, s.topo))
	if err != nil {
		return err
	}
	s.keys.Store(newKeyStore(s.js, keys))
	tenants, err := bus.WaitForBucket(ctx, s.js, contract.BucketTenants)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.tenants.Store(&tenants)
	// Once stopped, the batcher hands requests still being answered during
	// the shutdown straight to JetStream.
	batcherDone := make(chan struct{})
	go func() { defer close(batcherDone); _ = s.events.Run(ctx) }()
	defer func() { <-batcherDone }()
	stop, err := s.serveIngest(ctx)
	if err != nil {
		return err
	}
	s.ready.Store(true)
	s.log.InfoContext(ctx, "collector ready")
	<-ctx.Done()
	s.ready.Store(false)
	stop()
	return nil
}

// Package registry is the subscription registry: the REST API where tenants
// (accounts, sub-accounts, projects) and their webhook subscriptions are
// created, changed and deleted. It owns the KV buckets "tenants" and
// "subscriptions" and the CHANGES stream, where every change is recorded
// with its actor, time and a redacted diff.
//
// Secrets (HMAC "whsec_" secrets, ed25519 keys, passwords, tokens, client
// keys) are generated or accepted here, sealed with the operator keyring
// (package secretbox) before they are stored, returned at most once, and never
// logged, put in CHANGES or echoed in errors.
//
// Every write stores its CHANGES record in the written record ("outbox")
// and publishes it afterwards, so a crash in between loses no change
// (outbox.go); the subscription quota is exact under concurrent creates
// (quota.go).
//
// Deleting a tenant that has sub-tenants or subscriptions answers 409,
// unless ?cascade=true, which deletes the whole subtree and its
// subscriptions (each deletion is recorded in CHANGES).
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/secretbox"
	"github.com/heraldhq/herald/services/internal/domain/urlguard"
	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// Config is the registry's settings.
type Config struct {
	// AllowHTTP permits plain http:// webhook URLs (HERALD_REGISTRY_ALLOW_HTTP).
	AllowHTTP bool
	// AllowCIDRs are ranges permitted although non-global, e.g. loopback on
	// the dev default (HERALD_REGISTRY_ALLOW_CIDRS, comma-separated).
	AllowCIDRs []netip.Prefix
	// SubscriptionQuota is the default number of subscriptions per tenant
	// when its settings do not say (HERALD_REGISTRY_SUBSCRIPTION_QUOTA, 5).
	SubscriptionQuota int
	// RotationOverlap is how long a rotated-out secret still signs
	// (HERALD_REGISTRY_ROTATION_OVERLAP, 24h).
	RotationOverlap time.Duration
	// TestTimeout bounds a test call (HERALD_REGISTRY_TEST_TIMEOUT, 15s).
	TestTimeout time.Duration
	// AllowUnknownTypes lets every tenant subscribe to exact event types
	// that are not in the catalog (HERALD_REGISTRY_ALLOW_UNKNOWN_TYPES,
	// false; a tenant's allow_unknown_types does it for that tenant).
	AllowUnknownTypes bool
	// HandshakeOrigin is the WebHook-Request-Origin of the abuse-protection
	// handshake: the DNS name receivers know Herald by
	// (HERALD_REGISTRY_HANDSHAKE_ORIGIN, "herald"; empty means that).
	HandshakeOrigin string
	// OutboxSweep is how often the registry looks for changes a crashed
	// request left in their records, and how old such a change must be
	// (HERALD_REGISTRY_OUTBOX_SWEEP, 30s; below the 10-minute duplicate
	// window of CHANGES).
	OutboxSweep time.Duration
}

// ConfigFromEnv reads HERALD_REGISTRY_* variables.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{SubscriptionQuota: 5, RotationOverlap: 24 * time.Hour, TestTimeout: 15 * time.Second, HandshakeOrigin: "herald", OutboxSweep: 30 * time.Second}
	if v := getenv("HERALD_REGISTRY_HANDSHAKE_ORIGIN"); v != "" {
		c.HandshakeOrigin = v
	}
	var errs []error
	if v := getenv("HERALD_REGISTRY_ALLOW_HTTP"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("HERALD_REGISTRY_ALLOW_HTTP %q: want true or false", v))
		}
		c.AllowHTTP = b
	}
	if v := getenv("HERALD_REGISTRY_ALLOW_CIDRS"); v != "" {
		p, err := urlguard.ParsePrefixes(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("HERALD_REGISTRY_ALLOW_CIDRS: %w", err))
		}
		c.AllowCIDRs = p
	}
	if v := getenv("HERALD_REGISTRY_ALLOW_UNKNOWN_TYPES"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("HERALD_REGISTRY_ALLOW_UNKNOWN_TYPES %q: want true or false", v))
		}
		c.AllowUnknownTypes = b
	}
	env := service.NewEnvReader(getenv)
	env.Int("HERALD_REGISTRY_SUBSCRIPTION_QUOTA", &c.SubscriptionQuota)
	env.Duration("HERALD_REGISTRY_ROTATION_OVERLAP", &c.RotationOverlap)
	env.Duration("HERALD_REGISTRY_TEST_TIMEOUT", &c.TestTimeout)
	env.Duration("HERALD_REGISTRY_OUTBOX_SWEEP", &c.OutboxSweep)
	return c, errors.Join(append(errs, env.Err(), c.Validate())...)
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.SubscriptionQuota < 1 || c.SubscriptionQuota > 10000 {
		errs = append(errs, fmt.Errorf("registry subscription quota %d: want 1..10000", c.SubscriptionQuota))
	}
	if c.RotationOverlap < 0 {
		errs = append(errs, errors.New("registry rotation overlap must not be negative"))
	}
	if c.OutboxSweep < 0 || c.OutboxSweep > 5*time.Minute {
		errs = append(errs, fmt.Errorf("registry outbox sweep %s: want (0, 5m], 0 for the default 30s", c.OutboxSweep))
	}
	if strings.ContainsAny(c.HandshakeOrigin, " \t\r\n,") {
		errs = append(errs, fmt.Errorf("registry handshake origin %q: want a DNS name", c.HandshakeOrigin))
	}
	if c.TestTimeout <= 0 || c.TestTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("registry test timeout %s: want (0, 5m]", c.TestTimeout))
	}
	return errors.Join(errs...)
}

// Service is the registry.
type Service struct {
	cfg    Config
	js     jetstream.JetStream
	log    *slog.Logger
	topo   contract.Topology
	auth   apiauth.Authenticator
	keys   *secretbox.Keyring
	policy urlguard.Policy
	now    func() time.Time

	tenants atomic.Pointer[jetstream.KeyValue]
	subs    atomic.Pointer[jetstream.KeyValue]
	ready   atomic.Bool
}

// New returns a registry; Run provisions it.
func New(cfg Config, deps service.Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.JS == nil {
		return nil, errors.New("registry: no JetStream")
	}
	if deps.Keys == nil {
		return nil, errors.New("registry: no secret keyring (HERALD_SECRET_KEYS)")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.OutboxSweep == 0 {
		cfg.OutboxSweep = 30 * time.Second
	}
	return &Service{
		cfg: cfg, js: deps.JS, log: log.With("service", "registry"), topo: deps.Topology,
		auth: deps.Auth, keys: deps.Keys, now: time.Now,
		policy: urlguard.Policy{AllowHTTP: cfg.AllowHTTP, Allow: cfg.AllowCIDRs},
	}, nil
}

// Name implements service.Service.
func (s *Service) Name() string { return "registry" }

// Ready is nil once the buckets and the CHANGES stream exist.
func (s *Service) Ready() error {
	if !s.ready.Load() {
		return errors.New("registry: provisioning")
	}
	return nil
}

// Run ensures the CHANGES stream and both buckets, then sweeps outboxes
// until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	for {
		err := s.provision(ctx)
		if err == nil {
			break
		}
		s.log.WarnContext(ctx, "provision failed; retrying", "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	s.ready.Store(true)
	s.log.InfoContext(ctx, "ready")
	s.sweepLoop(ctx) // until ctx ends: changes left in records by crashed requests (outbox.go)
	return nil
}

func (s *Service) provision(ctx context.Context) error {
	if err := bus.EnsureStreams(ctx, s.js, contract.ChangesStream(s.topo)); err != nil {
		return err
	}
	t, err := bus.EnsureBucket(ctx, s.js, contract.Bucket(contract.BucketTenants, s.topo))
	if err != nil {
		return err
	}
	sb, err := bus.EnsureBucket(ctx, s.js, contract.Bucket(contract.BucketSubscriptions, s.topo))
	if err != nil {
		return err
	}
	s.tenants.Store(&t)
	s.subs.Store(&sb)
	return nil
}

// Routes implements service.HTTPService. Every route authenticates; tenant
// routes also check the caller may act for the tenant.
func (s *Service) Routes(mux *http.ServeMux) {
	for _, r := range s.routes() {
		mux.Handle(r.pattern, apiauth.Require(s.whenReady(r.h), s.auth))
	}
}

type route struct {
	pattern string
	h       http.HandlerFunc
}

func (s *Service) routes() []route {
	return []route{
		{"POST /v1/tenants", s.createTenant},
		{"GET /v1/tenants", s.listTenants},
		{"GET /v1/tenants/{tenant}", s.getTenant},
		{"PATCH /v1/tenants/{tenant}", s.patchTenant},
		{"DELETE /v1/tenants/{tenant}", s.deleteTenant},
		{"POST /v1/tenants/{tenant}/subscriptions", s.createSubscription},
		{"GET /v1/tenants/{tenant}/subscriptions", s.listSubscriptions},
		{"GET /v1/tenants/{tenant}/subscriptions/{id}", s.getSubscription},
		{"PATCH /v1/tenants/{tenant}/subscriptions/{id}", s.patchSubscription},
		{"DELETE /v1/tenants/{tenant}/subscriptions/{id}", s.deleteSubscription},
		{"POST /v1/tenants/{tenant}/subscriptions/{id}/pause", s.pauseSubscription},
		{"POST /v1/tenants/{tenant}/subscriptions/{id}/resume", s.resumeSubscription},
		{"POST /v1/tenants/{tenant}/subscriptions/{id}/rotate-secret", s.rotateSecret},
		{"GET /v1/tenants/{tenant}/subscriptions/{id}/public-key", s.publicKey},
		{"POST /v1/tenants/{tenant}/subscriptions/{id}/test", s.testSubscription},
		{"GET /v1/event-types", s.listEventTypes},
	}
}

func (s *Service) whenReady(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			p := problem.New(http.StatusServiceUnavailable, "the registry is starting")
			p.RetryAfter = 2 * time.Second
			problem.Write(w, r, p)
			return
		}
		h(w, r)
	})
}

func (s *Service) tenantKV() jetstream.KeyValue { return *s.tenants.Load() }
func (s *Service) subKV() jetstream.KeyValue    { return *s.subs.Load() }

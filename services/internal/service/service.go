// Package service is what every Herald service shares at run time: the
// dependencies a service is built from, the health endpoints, the HTTP
// server lifecycle, and the standalone runner that the per-service binaries
// use. The all-in-one binary composes the same services in one process.
package service

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/secretbox"
	"github.com/heraldhq/herald/services/internal/telemetry"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// Deps are what a service is built from. Services take these, never globals.
type Deps struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Logger   *slog.Logger
	Topology contract.Topology
	// Auth authenticates HTTP API callers (the admin token; the collector
	// adds tenant API keys).
	Auth apiauth.Authenticator
	// Keys seals and opens customers' secrets.
	Keys *secretbox.Keyring
	// Getenv reads the service's own settings.
	Getenv func(string) string
	// Metrics are Herald's instruments; nil in tests that do not measure.
	Metrics *telemetry.Metrics
}

// EnvMinAtomicBatch sets the smallest group of writes that a service's
// Batchers send as one atomic batch (bus.DefaultMinAtomicBatch; 2 suits
// an R3 cluster, where a batch is staged in memory and proposed once).
const EnvMinAtomicBatch = "HERALD_MIN_ATOMIC_BATCH"

// Batcher returns a group committer for stream on the service's connection
// (nil without one), set up from the service's environment.
func (d Deps) Batcher(stream string, log *slog.Logger) *bus.Batcher {
	if d.NC == nil || d.JS == nil {
		return nil
	}
	b := bus.NewBatcher(d.NC, d.JS, stream, 0, log)
	if d.Getenv != nil {
		if n, err := strconv.Atoi(d.Getenv(EnvMinAtomicBatch)); err == nil && n > 0 {
			b.WithMinAtomic(n)
		}
	}
	return b
}

// Service is a long-running part of Herald. Run blocks until ctx is
// cancelled, drains in-flight work, and returns nil; an error means the
// service cannot go on.
type Service interface {
	Name() string
	Run(ctx context.Context) error
}

// HTTPService also serves an HTTP API. Its handler registers routes with
// full paths (e.g. "/v1/tenants/{tenant}/events").
type HTTPService interface {
	Service
	Routes(mux *http.ServeMux)
}

// Readiness collects the checks behind /readyz.
type Readiness struct {
	mu     sync.Mutex
	checks map[string]func() error
}

// Add registers a named check. A service marks itself ready by adding a
// check once its streams and consumers are provisioned.
func (r *Readiness) Add(name string, check func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.checks == nil {
		r.checks = map[string]func() error{}
	}
	r.checks[name] = check
}

// Check runs every check.
func (r *Readiness) Check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for name, c := range r.checks {
		if err := c(); err != nil {
			errs = append(errs, errors.New(name+": "+err.Error()))
		}
	}
	return errors.Join(errs...)
}

// NATSCheck fails while the connection is not connected.
func NATSCheck(nc *nats.Conn) func() error {
	return func() error {
		if !nc.IsConnected() {
			return errors.New("not connected to NATS (" + nc.Status().String() + ")")
		}
		return nil
	}
}

// HealthRoutes adds /healthz (the process is alive) and /readyz (every
// readiness check passes) to mux.
func HealthRoutes(mux *http.ServeMux, ready *Readiness) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if err := ready.Check(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}

// NewHTTPServer returns a server with the timeouts every Herald listener
// uses, so that slow clients cannot hold connections open.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// ServeHTTP serves srv on ln until ctx is cancelled, then shuts it down
// within grace, letting in-flight requests finish.
func ServeHTTP(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	return err
}

package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/secretbox"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// Builder makes a service from its dependencies.
type Builder func(deps Deps) (Service, error)

// Readier is implemented by services that can tell when they are
// provisioned (streams, buckets and consumers ensured).
type Readier interface {
	Ready() error
}

// ShutdownGrace bounds how long a service drains after SIGTERM.
const ShutdownGrace = 20 * time.Second

// StandaloneConfig is what every per-service binary reads from the
// environment, besides its own settings.
type StandaloneConfig struct {
	Conn       bus.ConnConfig
	HTTPAddr   string // HERALD_HTTP_ADDR, default ":8080"
	AdminAddr  string // HERALD_ADMIN_ADDR: open /metrics and health; unset, /metrics needs the operator's token
	AdminToken string // HERALD_ADMIN_TOKEN, required
	SecretKeys string // HERALD_SECRET_KEYS, "v1:<base64 32 bytes>[,...]"
	Replicas   int    // HERALD_REPLICAS, stream and bucket replicas (3 on a cluster)
}

// StandaloneConfigFromEnv reads and validates the shared settings.
func StandaloneConfigFromEnv(getenv func(string) string, name string) (StandaloneConfig, error) {
	c := StandaloneConfig{
		Conn:       bus.ConnConfigFromEnv(getenv, "herald-"+name),
		HTTPAddr:   getenv("HERALD_HTTP_ADDR"),
		AdminAddr:  getenv(EnvAdminAddr),
		AdminToken: getenv("HERALD_ADMIN_TOKEN"),
		SecretKeys: getenv("HERALD_SECRET_KEYS"),
		Replicas:   1,
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = ":8080"
	}
	var errs []error
	if err := c.Conn.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("HERALD_ADMIN_TOKEN must be set, at least 16 characters"))
	}
	if r := getenv("HERALD_REPLICAS"); r != "" {
		if _, err := fmt.Sscanf(r, "%d", &c.Replicas); err != nil || c.Replicas < 1 || c.Replicas > 5 {
			errs = append(errs, errors.New("HERALD_REPLICAS must be 1 to 5"))
		}
	}
	return c, errors.Join(errs...)
}

// RunStandalone runs one service as its own process: it connects to NATS,
// serves the service's API with /healthz, /readyz and the operator's
// /metrics on HERALD_HTTP_ADDR (and an open /metrics on HERALD_ADMIN_ADDR),
// and on ctx cancel (SIGTERM) stops accepting requests, lets the service
// drain, and drains the NATS connection.
func RunStandalone(ctx context.Context, name string, getenv func(string) string, stdout io.Writer, build Builder) error {
	logger := NewLogger(stdout)
	cfg, err := StandaloneConfigFromEnv(getenv, name)
	if err != nil {
		return err
	}
	var keys *secretbox.Keyring
	if cfg.SecretKeys != "" {
		if keys, err = secretbox.Parse(cfg.SecretKeys); err != nil {
			return fmt.Errorf("HERALD_SECRET_KEYS: %w", err)
		}
	}
	nc, js, err := bus.Connect(cfg.Conn)
	if err != nil {
		return err
	}
	metrics, stopTelemetry, err := StartTelemetry(ctx, "herald-"+name, getenv, js, contract.Durables(name), logger)
	if err != nil {
		nc.Close()
		return err
	}
	defer stopTelemetry() // runs after the drain below: spans of the drain are flushed
	defer func() {
		if err := bus.Drain(nc, ShutdownGrace); err != nil {
			logger.Warn("drain NATS connection", "error", err)
		}
	}()
	deps := Deps{
		NC: nc, JS: js, Logger: logger, Keys: keys, Getenv: getenv, Metrics: metrics,
		Topology: contract.Topology{Replicas: cfg.Replicas, Storage: contract.DefaultTopology.Storage},
		// Tenant API keys work on every service's API, not only the
		// collector's that issues them.
		Auth: apiauth.Chain{apiauth.NewAdminToken(cfg.AdminToken), NewKeyAuthenticator(js)},
	}
	svc, err := build(deps)
	if err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	ready := &Readiness{}
	ready.Add("nats", NATSCheck(nc))
	if r, ok := svc.(Readier); ok {
		ready.Add(name, r.Ready)
	}
	mux := APIMux(ready, deps.Auth, svc)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	svcs := []Service{svc}
	if cfg.AdminAddr != "" {
		admin, err := ListenAdmin(cfg.AdminAddr, ready)
		if err != nil {
			ln.Close()
			return err
		}
		svcs = append(svcs, admin)
		logger.Info("admin listener", "admin_addr", admin.Addr().String())
	}
	logger.Info("started", "http_addr", ln.Addr().String(), "nats_url", cfg.Conn.URL)
	return RunAll(ctx, logger, ln, TraceHTTP(mux), svcs...)
}

// RunAll serves mux on ln and runs every service until ctx is cancelled or
// one fails. On the way out the HTTP server stops first, so no new work is
// accepted, then the services drain.
func RunAll(ctx context.Context, logger *slog.Logger, ln net.Listener, mux http.Handler, svcs ...Service) error {
	g, gctx := errgroup.WithContext(ctx)
	srv := NewHTTPServer(mux)
	g.Go(func() error {
		if err := ServeHTTP(gctx, srv, ln, ShutdownGrace); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http: %w", err)
		}
		return nil
	})
	for _, s := range svcs {
		g.Go(func() error {
			if err := s.Run(gctx); err != nil {
				return fmt.Errorf("%s: %w", s.Name(), err)
			}
			logger.Info("stopped", "component", s.Name())
			return nil
		})
	}
	return g.Wait()
}

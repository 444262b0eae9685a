package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/audit"
	"github.com/heraldhq/herald/services/collector"
	"github.com/heraldhq/herald/services/dispatcher"
	"github.com/heraldhq/herald/services/engine"
	"github.com/heraldhq/herald/services/herald/console"
	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/secretbox"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natsembed"
	"github.com/heraldhq/herald/services/registry"
)

// Config is the embedded default's configuration, read from the
// environment once.
type Config struct {
	HTTPAddr string // HERALD_HTTP_ADDR, default 127.0.0.1:8080
	// AdminAddr serves /metrics, /healthz and /readyz without auth
	// (HERALD_ADMIN_ADDR, unset by default: /metrics is on HTTPAddr for
	// the admin token only).
	AdminAddr  string
	DataDir    string // HERALD_DATA_DIR, default ./data
	AdminToken string // HERALD_ADMIN_TOKEN; generated and kept in DataDir if unset
	SecretKeys string // HERALD_SECRET_KEYS; generated and kept in DataDir if unset
	NATSHost   string // HERALD_NATS_HOST, default 127.0.0.1
	NATSPort   int    // HERALD_NATS_PORT, default 4222 so the nats CLI works; -1 picks a free port
	// SyncAlways fsyncs every JetStream write before it is acknowledged
	// (HERALD_NATS_SYNC=always, the default; "interval" uses the server's
	// periodic fsync: about 4x the throughput, and a machine crash can lose
	// what was acknowledged in the last interval).
	SyncAlways bool
}

func configFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		HTTPAddr:   getenv("HERALD_HTTP_ADDR"),
		AdminAddr:  getenv(service.EnvAdminAddr),
		DataDir:    getenv("HERALD_DATA_DIR"),
		AdminToken: getenv("HERALD_ADMIN_TOKEN"),
		SecretKeys: getenv("HERALD_SECRET_KEYS"),
		NATSHost:   getenv("HERALD_NATS_HOST"),
		NATSPort:   4222,
		SyncAlways: true,
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.NATSHost == "" {
		c.NATSHost = "127.0.0.1"
	}
	var errs []error
	if p := getenv("HERALD_NATS_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < -1 || n > 65535 {
			errs = append(errs, fmt.Errorf("HERALD_NATS_PORT %q: want a port number or -1", p))
		}
		c.NATSPort = n
	}
	switch v := getenv("HERALD_NATS_SYNC"); v {
	case "", "always":
	case "interval":
		c.SyncAlways = false
	default:
		errs = append(errs, fmt.Errorf("HERALD_NATS_SYNC %q: want always or interval", v))
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("HERALD_ADMIN_TOKEN must be at least 16 characters"))
	}
	return c, errors.Join(errs...)
}

// devDefaults are the settings that differ on the embedded default:
// webhook receivers on loopback over plain HTTP are allowed, so the README's
// walkthrough works against a local receiver. The allow-list serves the
// admin token's registrations (and tenants it enables), never a tenant key
// on its own: the embedded NATS port is on loopback too. Explicit
// environment wins.
var devDefaults = map[string]string{
	"HERALD_REGISTRY_ALLOW_HTTP":  "true",
	"HERALD_REGISTRY_ALLOW_CIDRS": "127.0.0.0/8,::1/128",
	// Free-form types such as the walkthrough's server.rebooted pass
	// through; misspelt catalog names are still refused.
	"HERALD_REGISTRY_ALLOW_UNKNOWN_TYPES": "true",
	"HERALD_DISPATCHER_ALLOW_CIDRS":       "127.0.0.0/8,::1/128",
}

func withDefaults(getenv func(string) string, defaults map[string]string) func(string) string {
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return defaults[k]
	}
}

// persistent returns the value of a generated setting kept in DataDir, making
// it on first use. fresh reports whether it was just made.
func persistent(dir, name string, make func() string) (value string, fresh bool, err error) {
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	v := make()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", false, err
	}
	return v, true, nil
}

func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "hadm_" + hex.EncodeToString(b)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: herald [serve]\n\nRuns Herald on its embedded default (see herald help for the client commands). Settings come from the environment:\n"+
			"  HERALD_HTTP_ADDR (127.0.0.1:8080), HERALD_ADMIN_ADDR (unset: /metrics needs the admin token),\n"+
			"  HERALD_DATA_DIR (./data), HERALD_ADMIN_TOKEN,\n"+
			"  HERALD_SECRET_KEYS, HERALD_NATS_HOST (127.0.0.1), HERALD_NATS_PORT (4222),\n"+
			"  HERALD_NATS_SYNC (always, or interval for the server's periodic fsync)")
	}
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	} else if ok, err := runClient(ctx, args, getenv, stdout, stderr); ok {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unknown command %q (see herald help)", fs.Arg(0))
	}
	cfg, err := configFromEnv(getenv)
	if err != nil {
		return err
	}
	return runEmbedded(ctx, cfg, getenv, stdout, nil)
}

// started reports the addresses of a running embedded Herald to tests.
type started struct {
	HTTPURL    string
	AdminURL   string // "" without an admin listener
	NATSURL    string
	AdminToken string
}

func runEmbedded(ctx context.Context, cfg Config, getenv func(string) string, stdout io.Writer, onStart func(started)) error {
	logger := service.NewLogger(stdout)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if cfg.AdminToken == "" {
		tok, fresh, err := persistent(cfg.DataDir, "admin-token", newToken)
		if err != nil {
			return fmt.Errorf("admin token: %w", err)
		}
		cfg.AdminToken = tok
		if fresh {
			fmt.Fprintf(stdout, "\nHerald admin token (shown once; kept in %s):\n\n    %s\n\n", filepath.Join(cfg.DataDir, "admin-token"), tok)
		}
	}
	if cfg.SecretKeys == "" {
		keys, _, err := persistent(cfg.DataDir, "secret-keys", secretbox.NewKeySpec)
		if err != nil {
			return fmt.Errorf("secret keys: %w", err)
		}
		cfg.SecretKeys = keys
	}
	keys, err := secretbox.Parse(cfg.SecretKeys)
	if err != nil {
		return fmt.Errorf("HERALD_SECRET_KEYS: %w", err)
	}

	ns, err := natsembed.Start(natsembed.Options{
		StoreDir: filepath.Join(cfg.DataDir, "jetstream"), Host: cfg.NATSHost, Port: cfg.NATSPort, SyncAlways: cfg.SyncAlways,
	})
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("herald"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to embedded NATS: %w", err)
	}
	// Shutdown order: services drain (RunAll), then the connection drains
	// to closed, then telemetry flushes, then the server stops.
	stopTelemetry := func() {}
	defer func() {
		if err := bus.Drain(nc, 30*time.Second); err != nil {
			logger.Warn("drain NATS connection", "error", err)
		}
		stopTelemetry()
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	metrics, stopTel, err := service.StartTelemetry(ctx, "herald", getenv, js, contract.Durables(""), logger)
	if err != nil {
		return err
	}
	stopTelemetry = stopTel

	deps := service.Deps{
		NC: nc, JS: js, Logger: logger, Keys: keys, Metrics: metrics,
		Topology: contract.DefaultTopology,
		Getenv:   withDefaults(getenv, devDefaults),
	}
	deps.Auth = apiauth.Chain{apiauth.NewAdminToken(cfg.AdminToken), service.NewKeyAuthenticator(js)}
	svcs, err := buildAll(deps)
	if err != nil {
		return err
	}

	ready := &service.Readiness{}
	ready.Add("nats", service.NATSCheck(nc))
	for _, s := range svcs {
		if r, ok := s.(service.Readier); ok {
			ready.Add(s.Name(), r.Ready)
		}
	}
	mux := service.APIMux(ready, deps.Auth, svcs...)
	mux.Handle("GET "+console.Prefix, console.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler(console.Prefix, http.StatusFound))
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	httpURL, adminURL := "http://"+ln.Addr().String(), ""
	if cfg.AdminAddr != "" {
		admin, err := service.ListenAdmin(cfg.AdminAddr, ready)
		if err != nil {
			ln.Close()
			return err
		}
		adminURL = "http://" + admin.Addr().String()
		svcs = append(svcs, admin)
	}
	logger.Info("herald started", "http", httpURL, "admin", adminURL, "nats", ns.ClientURL(), "data_dir", cfg.DataDir)
	if onStart != nil {
		onStart(started{HTTPURL: httpURL, AdminURL: adminURL, NATSURL: ns.ClientURL(), AdminToken: cfg.AdminToken})
	}
	return service.RunAll(ctx, logger, ln, service.TraceHTTP(mux), svcs...)
}

// buildAll makes the five services from one set of deps, each with its own
// configuration read from the environment as its own binary would.
func buildAll(deps service.Deps) ([]service.Service, error) {
	getenv := deps.Getenv
	var svcs []service.Service
	var errs []error
	add := func(s service.Service, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		svcs = append(svcs, s)
	}
	if c, err := registry.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else {
		add(registry.New(c, deps))
	}
	if c, err := collector.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else {
		add(collector.New(c, deps))
	}
	if c, err := engine.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else {
		add(engine.New(c, deps))
	}
	if c, err := dispatcher.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else {
		add(dispatcher.New(c, deps))
	}
	if c, err := audit.ConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else {
		add(audit.New(c, deps))
	}
	return svcs, errors.Join(errs...)
}

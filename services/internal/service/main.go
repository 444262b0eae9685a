package service

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main is the whole main of a per-service binary: it reads the service's
// config with configFromEnv, builds it with newService, runs it standalone
// until SIGINT or SIGTERM, and exits 1 with the error if it fails.
func Main[C any, S Service](name string, configFromEnv func(getenv func(string) string) (C, error), newService func(C, Deps) (S, error)) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := RunStandalone(ctx, name, os.Getenv, os.Stdout, func(d Deps) (Service, error) {
		cfg, err := configFromEnv(d.Getenv)
		if err != nil {
			return nil, err
		}
		return newService(cfg, d)
	})
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "herald-%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Command herald-engine runs the alert-state engine against NATS_URL.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/heraldhq/herald/pkg/service"
	"github.com/heraldhq/herald/services/engine"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := service.RunStandalone(ctx, "engine", os.Getenv, os.Stdout, func(d service.Deps) (service.Service, error) {
		cfg, err := engine.ConfigFromEnv(d.Getenv)
		if err != nil {
			return nil, err
		}
		return engine.New(cfg, d)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald-engine:", err)
		os.Exit(1)
	}
}

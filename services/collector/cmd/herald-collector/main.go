// Command herald-collector runs the collector against NATS_URL.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/heraldhq/herald/pkg/service"
	"github.com/heraldhq/herald/services/collector"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := service.RunStandalone(ctx, "collector", os.Getenv, os.Stdout, func(d service.Deps) (service.Service, error) {
		cfg, err := collector.ConfigFromEnv(d.Getenv)
		if err != nil {
			return nil, err
		}
		return collector.New(cfg, d)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald-collector:", err)
		os.Exit(1)
	}
}

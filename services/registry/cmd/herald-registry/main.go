// Command herald-registry runs the subscription registry against NATS_URL.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/heraldhq/herald/pkg/service"
	"github.com/heraldhq/herald/services/registry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := service.RunStandalone(ctx, "registry", os.Getenv, os.Stdout, func(d service.Deps) (service.Service, error) {
		cfg, err := registry.ConfigFromEnv(d.Getenv)
		if err != nil {
			return nil, err
		}
		return registry.New(cfg, d)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald-registry:", err)
		os.Exit(1)
	}
}

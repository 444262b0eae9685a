// Command herald-audit runs the audit service against NATS_URL.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/heraldhq/herald/pkg/service"
	"github.com/heraldhq/herald/services/audit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := service.RunStandalone(ctx, "audit", os.Getenv, os.Stdout, func(d service.Deps) (service.Service, error) {
		cfg, err := audit.ConfigFromEnv(d.Getenv)
		if err != nil {
			return nil, err
		}
		return audit.New(cfg, d)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald-audit:", err)
		os.Exit(1)
	}
}

// Command herald-dispatcher runs the dispatcher against NATS_URL.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/heraldhq/herald/pkg/service"
	"github.com/heraldhq/herald/services/dispatcher"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := service.RunStandalone(ctx, "dispatcher", os.Getenv, os.Stdout, func(d service.Deps) (service.Service, error) {
		cfg, err := dispatcher.ConfigFromEnv(d.Getenv)
		if err != nil {
			return nil, err
		}
		return dispatcher.New(cfg, d)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald-dispatcher:", err)
		os.Exit(1)
	}
}

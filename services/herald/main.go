// Command herald runs Herald on its embedded default: an embedded NATS
// server with JetStream under HERALD_DATA_DIR and all five services in one
// process behind one HTTP listener. The services are the same packages the
// per-service binaries run.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "herald:", err)
		stop()
		os.Exit(1)
	}
}

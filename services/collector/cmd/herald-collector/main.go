// Command herald-collector runs the collector against NATS_URL.
// Its settings come only from the environment (see the README).
package main

import (
	"github.com/heraldhq/herald/services/collector"
	"github.com/heraldhq/herald/services/internal/service"
)

func main() { service.Main("collector", collector.ConfigFromEnv, collector.New) }

// Command herald-collector runs the collector against NATS_URL.
// Its settings come only from the environment (see the README).
package main

import (
	"github.com/heraldhq/herald/pkg/service"
	"github.com/heraldhq/herald/services/collector"
)

func main() { service.Main("collector", collector.ConfigFromEnv, collector.New) }

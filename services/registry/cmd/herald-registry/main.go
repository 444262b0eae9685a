// Command herald-registry runs the subscription registry against NATS_URL.
// Its settings come only from the environment (see the README).
package main

import (
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/registry"
)

func main() { service.Main("registry", registry.ConfigFromEnv, registry.New) }

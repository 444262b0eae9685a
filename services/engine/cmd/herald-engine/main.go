// Command herald-engine runs the alert-state engine against NATS_URL.
// Its settings come only from the environment (see the README).
package main

import (
	"github.com/heraldhq/herald/services/engine"
	"github.com/heraldhq/herald/services/internal/service"
)

func main() { service.Main("engine", engine.ConfigFromEnv, engine.New) }

// Command herald-dispatcher runs the dispatcher against NATS_URL.
// Its settings come only from the environment (see the README).
package main

import (
	"github.com/heraldhq/herald/services/dispatcher"
	"github.com/heraldhq/herald/services/internal/service"
)

func main() { service.Main("dispatcher", dispatcher.ConfigFromEnv, dispatcher.New) }

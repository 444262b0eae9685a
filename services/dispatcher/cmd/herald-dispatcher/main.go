// Command herald-dispatcher runs the dispatcher against NATS_URL.
// Its settings come only from the environment (see the README).
package main

import (
	"github.com/heraldhq/herald/pkg/service"
	"github.com/heraldhq/herald/services/dispatcher"
)

func main() { service.Main("dispatcher", dispatcher.ConfigFromEnv, dispatcher.New) }

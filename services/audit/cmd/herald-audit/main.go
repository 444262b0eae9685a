// Command herald-audit runs the audit service against NATS_URL.
// Its settings come only from the environment (see the README).
package main

import (
	"github.com/heraldhq/herald/services/audit"
	"github.com/heraldhq/herald/services/internal/service"
)

func main() { service.Main("audit", audit.ConfigFromEnv, audit.New) }

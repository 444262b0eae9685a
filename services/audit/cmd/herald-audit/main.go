// Command herald-audit runs the audit service against NATS_URL.
// Its settings come only from the environment (see the README).
package main

import (
	"github.com/heraldhq/herald/pkg/service"
	"github.com/heraldhq/herald/services/audit"
)

func main() { service.Main("audit", audit.ConfigFromEnv, audit.New) }

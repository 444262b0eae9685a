package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/telemetry"
)

// /metrics names tenants' traffic, consumers and breakers: it is the
// operator's, not the internet's. On the API listener it answers only the
// operator's token (Prometheus: authorization.credentials_file). With
// HERALD_ADMIN_ADDR set, a second listener serves /metrics, /healthz and
// /readyz without authentication, for a scraper on a private network;
// bind it where only that network reaches. /healthz and /readyz stay
// open on the API listener too, for orchestrators' probes.

// EnvAdminAddr names the admin listener's address; unset, there is none.
const EnvAdminAddr = "HERALD_ADMIN_ADDR"

// APIMux returns the API listener's mux: health, /metrics for the
// operator's token only, and every HTTPService's routes.
func APIMux(ready *Readiness, auth apiauth.Authenticator, svcs ...Service) *http.ServeMux {
	mux := http.NewServeMux()
	HealthRoutes(mux, ready)
	mux.Handle("GET /metrics", apiauth.Require(operatorOnly(telemetry.MetricsHandler()), auth))
	for _, s := range svcs {
		if h, ok := s.(HTTPService); ok {
			h.Routes(mux)
		}
	}
	return mux
}

// AdminMux returns the admin listener's mux: health and /metrics, open.
func AdminMux(ready *Readiness) *http.ServeMux {
	mux := http.NewServeMux()
	HealthRoutes(mux, ready)
	mux.Handle("GET /metrics", telemetry.MetricsHandler())
	return mux
}

// operatorOnly answers 403 to any principal but the operator.
func operatorOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := apiauth.FromContext(r.Context()); !ok || !p.Admin {
			problem.Write(w, r, problem.New(http.StatusForbidden, "metrics are for the operator's token; a tenant API key may not read them"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// AdminServer serves AdminMux on its own listener. It is a Service, so
// RunAll runs and stops it with the rest.
type AdminServer struct {
	ln  net.Listener
	srv *http.Server
}

// ListenAdmin listens on addr for the admin mux.
func ListenAdmin(addr string, ready *Readiness) (*AdminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s (%s): %w", addr, EnvAdminAddr, err)
	}
	return &AdminServer{ln: ln, srv: NewHTTPServer(AdminMux(ready))}, nil
}

// Addr is the address the admin listener is bound to.
func (a *AdminServer) Addr() net.Addr { return a.ln.Addr() }

// Name implements Service.
func (a *AdminServer) Name() string { return "admin-http" }

// Run serves until ctx is cancelled.
func (a *AdminServer) Run(ctx context.Context) error {
	if err := ServeHTTP(ctx, a.srv, a.ln, ShutdownGrace); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

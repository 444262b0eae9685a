// Package apiauth authenticates HTTP API callers. The operator's admin token
// may do anything; a tenant API key (issued by the collector) may act only
// for its own tenant. Handlers read the Principal from the request context.
package apiauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/heraldhq/herald/pkg/problem"
)

// Principal is who is calling.
type Principal struct {
	// Actor is recorded in CHANGES and audit records: "admin" or
	// "apikey:<tenant>/<key id>". Never a secret.
	Actor  string
	Admin  bool
	Tenant string // set for tenant API keys
}

// CanAccess reports whether p may act for tenant.
func (p Principal) CanAccess(tenant string) bool {
	return p.Admin || (p.Tenant != "" && p.Tenant == tenant)
}

// ErrNoCredentials means the request carries no credential this
// authenticator understands; the next one is tried.
var ErrNoCredentials = errors.New("no credentials")

// ErrBadCredentials means credentials were presented and are wrong.
var ErrBadCredentials = errors.New("invalid credentials")

// Authenticator turns a request's credentials into a Principal. It returns
// ErrNoCredentials when the request has none it recognises.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// AdminToken accepts "Authorization: Bearer <token>" with the operator's
// token, compared in constant time.
type AdminToken struct{ sum [32]byte }

// NewAdminToken returns an authenticator for token.
func NewAdminToken(token string) AdminToken { return AdminToken{sum: sha256.Sum256([]byte(token))} }

// Authenticate implements Authenticator.
func (a AdminToken) Authenticate(r *http.Request) (Principal, error) {
	tok, ok := BearerToken(r)
	if !ok {
		return Principal{}, ErrNoCredentials
	}
	got := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(got[:], a.sum[:]) != 1 {
		return Principal{}, ErrNoCredentials
	}
	return Principal{Actor: "admin", Admin: true}, nil
}

// BearerToken returns the request's bearer token.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

type ctxKey struct{}

// WithPrincipal stores p in ctx.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the request's Principal.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Require wraps next so that it runs only for authenticated callers; the
// first authenticator that recognises the credentials decides. Others get
// 401 problem JSON.
func Require(next http.Handler, auths ...Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, a := range auths {
			if a == nil {
				continue
			}
			p, err := a.Authenticate(r)
			if errors.Is(err, ErrNoCredentials) {
				continue
			}
			if err != nil {
				break
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
		problem.Write(w, r, problem.New(http.StatusUnauthorized, "missing or invalid credentials: send Authorization: Bearer <admin token or tenant API key>"))
	})
}

// Chain tries each authenticator in order.
type Chain []Authenticator

// Authenticate implements Authenticator.
func (c Chain) Authenticate(r *http.Request) (Principal, error) {
	for _, a := range c {
		if a == nil {
			continue
		}
		p, err := a.Authenticate(r)
		if errors.Is(err, ErrNoCredentials) {
			continue
		}
		return p, err
	}
	return Principal{}, ErrNoCredentials
}

// ForTenant answers 403 unless the caller may act for tenant, and reports
// whether the handler may go on.
func ForTenant(w http.ResponseWriter, r *http.Request, tenant string) bool {
	p, ok := FromContext(r.Context())
	if !ok || !p.CanAccess(tenant) {
		problem.Write(w, r, problem.New(http.StatusForbidden, "this credential may not act for tenant "+tenant))
		return false
	}
	return true
}

// Package apiauth authenticates HTTP API callers. The operator's admin token
// may do anything; a tenant API key (issued by the collector) may act for
// its own tenant and, through the tenant hierarchy, for the tenants below it
// (an account's sub-accounts and projects), never for its parents or
// siblings. Handlers read the Principal from the request context.
package apiauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/heraldhq/herald/services/internal/problem"
)

// Principal is who is calling.
type Principal struct {
	// Actor is recorded in CHANGES and audit records: "admin" or
	// "apikey:<tenant>/<key id>". Never a secret.
	Actor  string
	Admin  bool
	Tenant string // set for tenant API keys
	// Tree, when set, lets a tenant principal act below its tenant.
	Tree Hierarchy
}

// Hierarchy reads the tenant tree.
type Hierarchy interface {
	// Parent returns tenant's parent, "" for a root. It returns
	// ErrUnknownTenant when there is no such tenant; other errors mean the
	// tree could not be read.
	Parent(ctx context.Context, tenant string) (string, error)
}

// ErrUnknownTenant is a Hierarchy's answer for a tenant that does not exist.
var ErrUnknownTenant = errors.New("apiauth: unknown tenant")

// maxDepth bounds the walk up the tree, so a corrupt (cyclic) tree cannot
// loop; real trees are an account, a few sub-account levels and a project.
const maxDepth = 32

// CanAccess reports whether p may act for tenant without reading the tree:
// the admin for every tenant, a tenant principal for its own.
func (p Principal) CanAccess(tenant string) bool {
	return p.Admin || (p.Tenant != "" && p.Tenant == tenant)
}

// MayActFor reports whether p may act for tenant: as CanAccess, and also,
// when p has a Tree, for every tenant below p's own (walking up from tenant
// to a root). An error means the tree could not be read.
func (p Principal) MayActFor(ctx context.Context, tenant string) (bool, error) {
	if p.CanAccess(tenant) {
		return true, nil
	}
	if p.Tenant == "" || p.Tree == nil || tenant == "" {
		return false, nil
	}
	t := tenant
	for range maxDepth {
		parent, err := p.Tree.Parent(ctx, t)
		if errors.Is(err, ErrUnknownTenant) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		switch parent {
		case "":
			return false, nil
		case p.Tenant:
			return true, nil
		}
		t = parent
	}
	return false, nil
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

// ForTenant answers 403 unless the caller may act for tenant (see
// Principal.MayActFor), 503 if the tenant tree cannot be read, and reports
// whether the handler may go on.
func ForTenant(w http.ResponseWriter, r *http.Request, tenant string) bool {
	p, ok := FromContext(r.Context())
	if !ok {
		problem.Write(w, r, problem.New(http.StatusForbidden, "this credential may not act for tenant "+tenant))
		return false
	}
	may, err := p.MayActFor(r.Context(), tenant)
	if err != nil {
		pr := problem.New(http.StatusServiceUnavailable, "could not read the tenant hierarchy to authorise the request; retry shortly")
		pr.RetryAfter = 2 * time.Second
		problem.Write(w, r, pr)
		return false
	}
	if !may {
		problem.Write(w, r, problem.New(http.StatusForbidden, Forbidden(p, tenant)))
		return false
	}
	return true
}

// Forbidden is the 403 detail for p acting on tenant.
func Forbidden(p Principal, tenant string) string {
	if p.Tenant != "" {
		return fmt.Sprintf("this credential may not act for tenant %s: an API key of %s acts for %s and the tenants below it, not for its parents or siblings", tenant, p.Tenant, p.Tenant)
	}
	return "this credential may not act for tenant " + tenant
}

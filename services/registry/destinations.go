package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/urlguard"
)

// The operator's allow-list (AllowCIDRs: loopback on the embedded default,
// a compose network, an internal range) is the operator's exception to the
// SSRF guard, not the tenants'. A tenant key that could register
// http://127.0.0.1:4222/ would scan and read the services next to Herald,
// so a URL that needs the allow-list is accepted only from the operator's
// token, or from a tenant the operator enabled
// (settings.allow_private_destinations), and the subscription carries the
// grant (OperatorAllowed) to the dispatcher's and the test call's dial-time
// checks.

// checkURL checks u for tenant: first with no allow-list; if that refuses
// an address the allow-list permits, the caller must be entitled to it.
// allowed reports that the URL needs the allow-list and may use it.
func (s *Service) checkURL(ctx context.Context, tenant, u string) (allowed bool, err error) {
	strict := s.policy
	strict.Allow = nil
	err = urlguard.CheckURL(ctx, u, strict)
	if err == nil || !errors.Is(err, urlguard.ErrBlocked) || len(s.policy.Allow) == 0 {
		return false, err
	}
	if err := urlguard.CheckURL(ctx, u, s.policy); err != nil {
		return false, err
	}
	if !s.mayUseAllowList(ctx, tenant) {
		return false, fmt.Errorf("%w (only the operator may register it, or enable settings.allow_private_destinations for this tenant)", err)
	}
	return true, nil
}

// mayUseAllowList reports whether the caller may point tenant's
// subscriptions into the operator's allow-listed ranges.
func (s *Service) mayUseAllowList(ctx context.Context, tenant string) bool {
	p, ok := apiauth.FromContext(ctx)
	if !ok {
		return false
	}
	if p.Admin {
		return true
	}
	t, _, err := s.loadTenant(ctx, tenant)
	return err == nil && t.Settings.AllowPrivateDestinations
}

// applyPrivateDestinations sets the tenant's grant: only the operator may
// change it; anyone may resend the current value.
func applyPrivateDestinations(ctx context.Context, in *bool, old bool, errs *fieldErrors) bool {
	if in == nil || *in == old {
		return old
	}
	if p, ok := apiauth.FromContext(ctx); !ok || !p.Admin {
		errs.add("/settings/allow_private_destinations", "only the operator may change this")
		return old
	}
	return *in
}

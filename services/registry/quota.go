package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/domain/tenancy"
	"github.com/heraldhq/herald/services/internal/problem"
)

// The subscription quota is exact under concurrent creates, on one registry
// instance or many, with no lock and no counter that could drift. A create
//
//  1. reads the tenant record (revision r) and counts the subscriptions,
//     refusing at the limit;
//  2. writes its subscription record;
//  3. rewrites the tenant record unchanged, on condition that it is still
//     at revision r.
//
// If step 3 fails, another create (or a tenant change) passed step 3 since
// step 1: the request deletes its record and starts again. Of two creates
// that both succeed, the second read the tenant after the first's step 3,
// so its count includes the first's record (written in step 2, before
// that): successful creates see each other, and never more than the limit
// stand. A record deleted at step 3 exists for one round trip and is never
// recorded in CHANGES; a notification planned for it meanwhile finds no
// subscription to deliver to.
//
// The argument needs a count that sees every record written before it:
// bus.ListKeys answers from one server-side snapshot (jetstream's own key
// listing could end early while losers' records came and went, and let a
// sixth create through a quota of five). Above 1024 subscriptions the
// listing is a scan, which can miss a record rewritten while it runs, so a
// quota above 1024 is exact only when no subscription is being updated
// while creates race.

// maxQuotaRounds bounds the retries of one create under contention; each
// round that fails was lost to a create that succeeded.
const maxQuotaRounds = 50

// quotaProblem is the 409 for a tenant at its limit.
func quotaProblem(tenant string, limit int) *problem.Problem {
	p := problem.New(http.StatusConflict, fmt.Sprintf("subscription quota reached: tenant %s may have at most %d subscriptions", tenant, limit))
	p.Type = "https://herald.dev/problems/quota-exceeded"
	return p
}

// errQuota reports the limit a create ran into.
type errQuota struct{ limit int }

func (e *errQuota) Error() string { return fmt.Sprintf("quota of %d reached", e.limit) }

// createWithinQuota stores sub's record with its change (see outbox.go)
// unless the tenant is at its subscription quota, which it returns as
// *errQuota.
func (s *Service) createWithinQuota(ctx context.Context, sub subscription.Subscription, change json.RawMessage) error {
	key := subscription.Key(sub.Tenant, sub.ID)
	raw, err := withOutbox(sub, change)
	if err != nil {
		return err
	}
	for round := range maxQuotaRounds {
		if round > 0 {
			select { // spread the racers out a little
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(rand.IntN(5*round+5)) * time.Millisecond):
			}
		}
		te, err := s.tenantKV().Get(ctx, sub.Tenant)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("read tenant: %w", err)
		}
		t, err := decodeTenant(sub.Tenant, te.Value())
		if err != nil {
			return err
		}
		if pendingDelete(t.Outbox) {
			return errNotFound // being deleted (outbox.go)
		}
		limit := s.quota(t)
		keys, err := s.listKeys(ctx, s.subKV(), sub.Tenant+".*")
		if err != nil {
			return fmt.Errorf("count subscriptions: %w", err)
		}
		if len(keys) >= limit {
			return &errQuota{limit}
		}
		rev, err := s.subKV().Create(ctx, key, raw)
		if err != nil {
			return fmt.Errorf("store subscription: %w", err)
		}
		_, err = s.tenantKV().Update(ctx, sub.Tenant, te.Value(), te.Revision())
		if err == nil {
			s.settle(ctx, s.subKV(), key, rev, raw)
			return nil
		}
		s.dropOwn(ctx, key, rev)
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("confirm the quota: %w", err)
		}
	}
	return fmt.Errorf("subscription quota of %s: %d rounds lost to concurrent creates", sub.Tenant, maxQuotaRounds)
}

func decodeTenant(id string, b []byte) (tenancy.Tenant, error) {
	var t tenancy.Tenant
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("decode tenant %s: %w", id, err)
	}
	return t, nil
}

// dropOwn deletes the record this request created, if it is unchanged.
func (s *Service) dropOwn(ctx context.Context, key string, rev uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.subKV().Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
		s.log.ErrorContext(ctx, "remove a subscription that lost the quota race", "key", key, "error", err)
	}
}

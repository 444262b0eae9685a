package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/domain/tenancy"
)

// maxTenantDepth bounds the walk up the tenant hierarchy, so a corrupt
// Parent cycle cannot loop.
const maxTenantDepth = 16

// index is the in-memory view of the subscriptions and tenants buckets,
// kept current by KV watches.
type index struct {
	mu       sync.RWMutex
	byKey    map[string]*subscription.Subscription // subscription.Key
	byTenant map[string]map[string]*subscription.Subscription
	parent   map[string]string
}

func newIndex() *index {
	return &index{
		byKey:    map[string]*subscription.Subscription{},
		byTenant: map[string]map[string]*subscription.Subscription{},
		parent:   map[string]string{},
	}
}

// watch applies both buckets' updates until ctx ends; it closes loaded
// once both initial snapshots are in.
func (x *index) watch(ctx context.Context, subs, tenants jetstream.KeyValue, loaded chan<- struct{}, log *slog.Logger) error {
	sw, err := subs.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch subscriptions: %w", err)
	}
	defer func() { _ = sw.Stop() }()
	tw, err := tenants.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch tenants: %w", err)
	}
	defer func() { _ = tw.Stop() }()
	subsDone, tenantsDone, signalled := false, false, false
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-sw.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil // the watch ends with ctx
				}
				return errors.New("subscriptions watch closed")
			}
			if e == nil {
				subsDone = true
			} else {
				x.applySub(e, log)
			}
		case e, ok := <-tw.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil // the watch ends with ctx
				}
				return errors.New("tenants watch closed")
			}
			if e == nil {
				tenantsDone = true
			} else {
				x.applyTenant(e, log)
			}
		}
		if subsDone && tenantsDone && !signalled {
			signalled = true
			close(loaded)
		}
	}
}

func (x *index) applySub(e jetstream.KeyValueEntry, log *slog.Logger) {
	if e.Operation() != jetstream.KeyValuePut {
		x.removeSub(e.Key())
		return
	}
	var s subscription.Subscription
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		log.Warn("unreadable subscription record ignored", "key", e.Key(), "error", err)
		return
	}
	x.putSub(e.Key(), &s)
}

func (x *index) putSub(key string, s *subscription.Subscription) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byKey[key]; ok {
		delete(x.byTenant[old.Tenant], old.ID)
	}
	x.byKey[key] = s
	m := x.byTenant[s.Tenant]
	if m == nil {
		m = map[string]*subscription.Subscription{}
		x.byTenant[s.Tenant] = m
	}
	m[s.ID] = s
}

func (x *index) removeSub(key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byKey[key]; ok {
		delete(x.byTenant[old.Tenant], old.ID)
		delete(x.byKey, key)
	}
}

func (x *index) applyTenant(e jetstream.KeyValueEntry, log *slog.Logger) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(x.parent, e.Key())
		return
	}
	var t tenancy.Tenant
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		log.Warn("unreadable tenant record ignored", "key", e.Key(), "error", err)
		return
	}
	x.parent[e.Key()] = t.Parent
}

// get returns a copy of one subscription.
func (x *index) get(tenant, id string) (subscription.Subscription, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	s, ok := x.byKey[subscription.Key(tenant, id)]
	if !ok {
		return subscription.Subscription{}, false
	}
	return *s, true
}

// match returns the active subscriptions that want a notification of
// eventType in tenant: the tenant's own, and its ancestors' that include
// sub-accounts. Sorted for deterministic publishing.
func (x *index) match(tenant, eventType string) []subscription.Subscription {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []subscription.Subscription
	seen := map[string]bool{}
	t := tenant
	for depth := 0; t != "" && !seen[t] && depth < maxTenantDepth; depth++ {
		seen[t] = true
		for _, s := range x.byTenant[t] {
			if !s.Active() || !s.MatchesType(eventType) {
				continue
			}
			if t != tenant && !s.IncludeSubaccounts {
				continue
			}
			out = append(out, *s)
		}
		t = x.parent[t]
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.Compare(out[i].Tenant+"."+out[i].ID, out[j].Tenant+"."+out[j].ID) < 0
	})
	return out
}

// isAncestor reports whether ancestor is a strict ancestor of tenant.
func (x *index) isAncestor(ancestor, tenant string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	t := x.parent[tenant]
	for depth := 0; t != "" && depth < maxTenantDepth; depth++ {
		if t == ancestor {
			return true
		}
		t = x.parent[t]
	}
	return false
}

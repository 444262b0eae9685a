package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// Notification types the dispatcher emits.
const (
	typeSubscriptionDisabled = "subscription.disabled"
	typeEndpointDisabled     = "endpoint.disabled"
)

// endpointHealth is a subscription's failure streak in endpoint-health.
type endpointHealth struct {
	FailingSince time.Time `json:"failing_since"`
	LastFailure  time.Time `json:"last_failure"`
}

func healthKey(sub subscription.Subscription) string {
	h := sha256.Sum256([]byte(subscription.Key(sub.Tenant, sub.ID)))
	return hex.EncodeToString(h[:16])
}

// noteFailure starts or extends the subscription's failure streak and
// reports whether it has lasted DisableAfter.
func (s *Service) noteFailure(ctx context.Context, sub subscription.Subscription, now time.Time) (bool, error) {
	key := healthKey(sub)
	// After the write: a clearHealth read that began before it cannot
	// leave the key marked absent.
	defer s.healthSeen.failed(key)
	e, err := s.health.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		b, _ := json.Marshal(endpointHealth{FailingSince: now.UTC(), LastFailure: now.UTC()})
		_, err := s.health.Create(ctx, key, b)
		if errors.Is(err, jetstream.ErrKeyExists) {
			err = nil
		}
		return false, err
	}
	if err != nil {
		return false, err
	}
	var h endpointHealth
	if err := json.Unmarshal(e.Value(), &h); err != nil {
		return false, err
	}
	h.LastFailure = now.UTC()
	b, _ := json.Marshal(h)
	_, _ = s.health.Update(ctx, key, b, e.Revision()) // losing this race changes nothing
	return now.Sub(h.FailingSince) >= s.cfg.DisableAfter, nil
}

// clearHealth ends the subscription's failure streak after a success. It
// skips the read when this instance saw the key absent less than
// healthSeenTTL ago and has noted no failure of the subscription since.
func (s *Service) clearHealth(ctx context.Context, sub subscription.Subscription) {
	key := healthKey(sub)
	start := time.Now()
	if s.healthSeen.absent(key, start) {
		return
	}
	_, err := s.health.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err == nil:
		if s.health.Delete(ctx, key) != nil {
			return
		}
	default:
		return
	}
	s.healthSeen.cleared(key, start)
}

// healthSeenTTL is how long clearHealth trusts that a subscription's
// endpoint-health key is absent without reading it.
//
// The staleness is bounded and harmless: only a streak that another
// instance starts inside the window can be missed (this instance's own
// noteFailure invalidates the entry), and the next success of the
// subscription after the window, on any instance, clears it. Until then the
// streak only counts towards DisableAfter, whose clock is hours long (120h
// by default): a clear missed for at most a second cannot disable an
// endpoint that keeps succeeding. The read it saves sits on every
// successful delivery.
const healthSeenTTL = time.Second

// healthCache remembers, per endpoint-health key, when this instance last
// saw the key absent (read or deleted it) and when it last noted a failure.
type healthCache struct {
	mu     sync.Mutex
	m      map[string]healthSeen
	pruned time.Time
}

type healthSeen struct{ absentAt, failedAt time.Time }

func newHealthCache() *healthCache { return &healthCache{m: map[string]healthSeen{}} }

// absent reports whether key was seen absent within healthSeenTTL of now
// with no failure noted since.
func (c *healthCache) absent(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return ok && !e.absentAt.IsZero() && e.failedAt.Before(e.absentAt) && now.Sub(e.absentAt) < healthSeenTTL
}

// cleared records that key was absent as of start (the time its read
// began); a failure noted after start, by a worker that raced the read,
// wins.
func (c *healthCache) cleared(key string, start time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if !e.failedAt.Before(start) {
		return
	}
	e.absentAt = start
	c.m[key] = e
	c.prune(start)
}

// failed invalidates key: the next success reads it again.
func (c *healthCache) failed(key string) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[key] = healthSeen{failedAt: now}
	c.prune(now)
}

// prune drops entries that can no longer matter, at most once per TTL, so
// the map stays as large as the set of recently delivered subscriptions.
// An entry whose failure is older than the TTL is safe to drop: a read it
// raced began before it and is itself older than the TTL.
func (c *healthCache) prune(now time.Time) {
	if now.Sub(c.pruned) < healthSeenTTL {
		return
	}
	c.pruned = now
	for k, e := range c.m {
		if now.Sub(e.absentAt) >= healthSeenTTL && now.Sub(e.failedAt) >= healthSeenTTL {
			delete(c.m, k)
		}
	}
}

// disable sets the subscription's status to disabled with a CAS on its
// record, keeping every field the registry wrote, and emits a notification
// of notifType to the subscription's tenant. Only the instance whose CAS
// disabled it emits the notification.
func (s *Service) disable(ctx context.Context, sub subscription.Subscription, reason, notifType string) error {
	key := subscription.Key(sub.Tenant, sub.ID)
	for range 5 {
		e, err := s.subs.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read subscription: %w", err)
		}
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return bus.Permanent(err)
		}
		var status string
		_ = json.Unmarshal(rec["status"], &status)
		if status == subscription.StatusDisabled {
			return nil
		}
		now := time.Now().UTC()
		rec["status"], _ = json.Marshal(subscription.StatusDisabled)
		rec["status_reason"], _ = json.Marshal(reason)
		rec["updated_at"], _ = json.Marshal(now)
		b, _ := json.Marshal(rec)
		rev, err := s.subs.Update(ctx, key, b, e.Revision())
		if isWrongSequence(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("disable subscription: %w", err)
		}
		return s.notify(ctx, sub, notifType, reason, rev, now)
	}
	return errors.New("disable subscription: too many concurrent updates")
}

func (s *Service) notify(ctx context.Context, sub subscription.Subscription, notifType, reason string, rev uint64, at time.Time) error {
	id := fmt.Sprintf("%s-%s-%s-%d", notifType, sub.Tenant, sub.ID, rev)
	e := event.New()
	e.SetID(id)
	e.SetSource(eventSource)
	e.SetType(notifType)
	e.SetSubject(sub.ID)
	e.SetTime(at)
	e.SetExtension("tenant", sub.Tenant)
	if err := e.SetData(event.ApplicationJSON, map[string]any{
		"tenant": sub.Tenant, "subscriptionId": sub.ID, "url": redactURL(sub.URL), "reason": reason, "disabledAt": at,
	}); err != nil {
		return bus.Permanent(err)
	}
	_, err := bus.PublishEvent(ctx, s.js, contract.NotificationSubject(sub.Tenant, notifType), id, e)
	return err
}

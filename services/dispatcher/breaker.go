package dispatcher

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
)

// breakers hold one circuit breaker per endpoint host: after `failures`
// consecutive failures the endpoint is left alone for `cooldown`; then one
// more failure re-opens it at once (half-open), one success closes it.
type breakers struct {
	mu       sync.Mutex
	failures int
	cooldown time.Duration
	m        map[string]*breaker
	slots    map[string]chan struct{}
	// freed is when each host last gave a slot back: a host whose slots
	// are all taken and none came back lately is stalled, not busy.
	freed map[string]time.Time
}

type breaker struct {
	streak    int
	openUntil time.Time
}

func newBreakers(failures int, cooldown time.Duration) *breakers {
	return &breakers{failures: failures, cooldown: cooldown, m: map[string]*breaker{}, slots: map[string]chan struct{}{},
		freed: map[string]time.Time{}}
}

// openUntil returns the time the host's breaker closes, or zero when closed.
func (b *breakers) openUntil(host string, now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if br := b.m[host]; br != nil && now.Before(br.openUntil) {
		return br.openUntil
	}
	return time.Time{}
}

func (b *breakers) record(host string, ok bool, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	br := b.m[host]
	if ok {
		delete(b.m, host)
		return
	}
	if br == nil {
		br = &breaker{}
		b.m[host] = br
	}
	br.streak++
	if br.streak >= b.failures {
		br.openUntil = now.Add(b.cooldown)
		br.streak = b.failures - 1 // half-open after the cooldown
	}
}

// open counts the open breakers, for metrics and tests.
func (b *breakers) open(now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, br := range b.m {
		if now.Before(br.openUntil) {
			n++
		}
	}
	return n
}

// acquire takes one of the host's concurrency slots. When all are taken it
// waits up to wait for one, but only while the host's POSTs are finishing
// (a burst to a fast endpoint): a host that has not given a slot back for
// wait is stalled (hung, or slower than its timeout), and its pair is
// handed back at once, so that a dead endpoint holds at most its own
// slots' workers and never the others'.
func (b *breakers) acquire(ctx context.Context, host string, limit int, wait time.Duration) (release func(), ok, stalled bool) {
	b.mu.Lock()
	ch := b.slots[host]
	if ch == nil {
		ch = make(chan struct{}, limit)
		b.slots[host] = ch
	}
	lastFreed := b.freed[host]
	b.mu.Unlock()
	release = func() {
		<-ch
		b.mu.Lock()
		b.freed[host] = time.Now()
		b.mu.Unlock()
	}
	select {
	case ch <- struct{}{}:
		return release, true, false
	default:
	}
	if time.Since(lastFreed) > wait {
		return nil, false, true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case ch <- struct{}{}:
		return release, true, false
	case <-t.C:
		return nil, false, false
	case <-ctx.Done():
		return nil, false, false
	}
}

// limiters enforce each subscription's rate limit (requests per second).
type limiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newLimiters() *limiters { return &limiters{m: map[string]*rate.Limiter{}} }

// reserve returns how long the next request to sub must wait (zero when
// the subscription has no limit) and a func that gives the token back when
// the caller reschedules instead of waiting.
func (l *limiters) reserve(sub subscription.Subscription, now time.Time) (time.Duration, func()) {
	if sub.RateLimit <= 0 {
		return 0, func() {}
	}
	key := subscription.Key(sub.Tenant, sub.ID)
	l.mu.Lock()
	lim := l.m[key]
	burst := max(1, int(math.Ceil(sub.RateLimit)))
	if lim == nil || lim.Limit() != rate.Limit(sub.RateLimit) {
		lim = rate.NewLimiter(rate.Limit(sub.RateLimit), burst)
		l.m[key] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	return r.DelayFrom(now), func() { r.CancelAt(now) }
}

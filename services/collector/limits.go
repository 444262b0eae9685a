package collector

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per tenant. A tenant's own rate (from its
// settings) replaces the default when set. Buckets hold at least one full
// batch, so any allowed batch can pass once the bucket is full.
type limiter struct {
	def      float64
	minBurst int
	mu       sync.Mutex
	byTenant map[string]*rate.Limiter
}

func newLimiter(def float64, maxBatch int) *limiter {
	return &limiter{def: def, minBurst: maxBatch, byTenant: map[string]*rate.Limiter{}}
}

// allow takes n events from tenant's bucket. When they are not available it
// takes nothing and returns how long until they would be.
func (l *limiter) allow(tenant string, perSecond float64, n int) (bool, time.Duration) {
	if perSecond <= 0 {
		perSecond = l.def
	}
	burst := max(l.minBurst, int(math.Ceil(perSecond)))
	l.mu.Lock()
	lim, ok := l.byTenant[tenant]
	if !ok {
		lim = rate.NewLimiter(rate.Limit(perSecond), burst)
		l.byTenant[tenant] = lim
	}
	l.mu.Unlock()
	if lim.Limit() != rate.Limit(perSecond) || lim.Burst() != burst {
		lim.SetLimit(rate.Limit(perSecond))
		lim.SetBurst(burst)
	}
	now := time.Now()
	r := lim.ReserveN(now, n)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

package dispatcher

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps how long a receiver's Retry-After can push an attempt.
const maxRetryAfter = 24 * time.Hour

// nextDelay returns the delay before the attempt after attempt n (1-based)
// and false when the schedule is exhausted. Schedule[i] is the delay before
// attempt i+1, so Schedule[0] (the first attempt) is never used here.
func nextDelay(schedule []time.Duration, n int, jitter float64, retryAfter time.Duration) (time.Duration, bool) {
	if n >= len(schedule) {
		return 0, false
	}
	d := schedule[n]
	if jitter > 0 && d > 0 {
		d = time.Duration(float64(d) * (1 + jitter*(2*rand.Float64()-1)))
	}
	if retryAfter > d {
		d = retryAfter
	}
	return d, true
}

// scheduleTime is when a retry after d fires. Scheduled messages fire with
// one-second granularity, so the time is rounded up to a whole second, at
// least one second ahead.
func scheduleTime(now time.Time, d time.Duration) time.Time {
	if d < time.Second {
		d = time.Second
	}
	t := now.Add(d)
	if r := t.Truncate(time.Second); !r.Equal(t) {
		t = r.Add(time.Second)
	}
	return t
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

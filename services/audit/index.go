package audit

import (
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/auditchain"
)

// entry locates one record in AUDIT; the record itself stays in the stream.
type entry struct {
	seq  uint64 // AUDIT stream sequence
	at   int64  // unix nanos of the record's At
	kind uint8
}

var kinds = []string{"", auditchain.KindEvent, auditchain.KindNotification, auditchain.KindAttempt, auditchain.KindChange}

func kindCode(k string) uint8 {
	for i, s := range kinds {
		if i > 0 && s == k {
			return uint8(i)
		}
	}
	return 0
}

type tenantIndex struct {
	all     []entry            // every record, by stream sequence
	keys    map[string][]entry // "n:", "s:", "e:", "x:" postings, by stream sequence
	caused  map[string][]string
	sources map[source]struct{} // inputs already recorded
}

// index maps query keys to AUDIT sequences, per tenant. Postings are
// appended in stream order by the follower, so they stay sorted.
type index struct {
	mu      sync.RWMutex
	tenants map[string]*tenantIndex
}

func newIndex() *index { return &index{tenants: map[string]*tenantIndex{}} }

func (x *index) tenant(t string) *tenantIndex {
	ti, ok := x.tenants[t]
	if !ok {
		ti = &tenantIndex{keys: map[string][]entry{}, caused: map[string][]string{}, sources: map[source]struct{}{}}
		x.tenants[t] = ti
	}
	return ti
}

func (x *index) add(seq uint64, raw []byte) error {
	var r auditchain.Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	ti := x.tenant(r.Tenant)
	if n := len(ti.all); n > 0 && ti.all[n-1].seq >= seq {
		return nil // already indexed
	}
	e := entry{seq: seq, at: r.At.UnixNano(), kind: kindCode(r.Kind)}
	ti.all = append(ti.all, e)
	ti.sources[sourceOf(r.SourceStream, r.SourceSeq)] = struct{}{}
	put := func(k string) {
		if len(k) > 2 {
			if p := ti.keys[k]; len(p) == 0 || p[len(p)-1].seq != seq {
				ti.keys[k] = append(p, e)
			}
		}
	}
	switch r.Kind {
	case auditchain.KindEvent:
		put("e:" + r.ID)
	case auditchain.KindNotification:
		put("n:" + r.ID)
		for _, id := range r.EventIDs {
			ti.caused[id] = append(ti.caused[id], r.ID)
		}
	}
	put("n:" + r.NotificationID)
	put("s:" + r.SubscriptionID)
	put("x:" + r.Subject)
	for _, id := range r.EventIDs {
		put("e:" + id)
	}
	return nil
}

// source names an input message compactly: 16 bytes instead of a string.
type source struct {
	stream uint8
	seq    uint64
}

var inputStreams = []string{"", "EVENTS", "NOTIFICATIONS", "ATTEMPTS", "CHANGES"}

func sourceOf(stream string, seq uint64) source {
	for i, s := range inputStreams {
		if i > 0 && s == stream {
			return source{uint8(i), seq}
		}
	}
	return source{0, seq}
}

func (x *index) hasSource(tenant string, src source) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	ti, ok := x.tenants[tenant]
	if !ok {
		return false
	}
	_, ok = ti.sources[src]
	return ok
}

func (x *index) markSource(tenant string, src source) {
	x.mu.Lock()
	x.tenant(tenant).sources[src] = struct{}{}
	x.mu.Unlock()
}

// candidates returns the postings to scan for q, sorted by sequence: the
// most specific key given; for an event, its own postings plus those of
// every notification it caused (attempts of a notification need not repeat
// the event id).
func (x *index) candidates(tenant string, q query) []entry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	ti, ok := x.tenants[tenant]
	if !ok {
		return nil
	}
	var out []entry
	switch {
	case q.Event != "":
		lists := [][]entry{ti.keys["e:"+q.Event]}
		for _, n := range ti.caused[q.Event] {
			lists = append(lists, ti.keys["n:"+n])
		}
		seen := map[uint64]bool{}
		for _, l := range lists {
			for _, e := range l {
				if !seen[e.seq] {
					seen[e.seq] = true
					out = append(out, e)
				}
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
		return out
	case q.Notification != "":
		out = ti.keys["n:"+q.Notification]
	case q.Subject != "":
		out = ti.keys["x:"+q.Subject]
	case q.Subscription != "":
		out = ti.keys["s:"+q.Subscription]
	default:
		out = ti.all
	}
	return out[:len(out):len(out)] // callers must not append into the index
}

// expireBefore forgets the tenant's entries older than cutoff and returns
// the AUDIT sequence below which the tenant's records may be purged.
func (x *index) expireBefore(tenant string, cutoff time.Time) (keepFrom uint64, dropped int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ti, ok := x.tenants[tenant]
	if !ok {
		return 0, 0
	}
	c := cutoff.UnixNano()
	// at is not strictly monotonic across inputs; stop at the first young
	// record so that the kept part stays one contiguous chain segment.
	i := 0
	for i < len(ti.all) && ti.all[i].at < c {
		i++
	}
	if i == 0 {
		return 0, 0
	}
	keepFrom = ti.all[i-1].seq + 1
	ti.all = ti.all[i:]
	for k, p := range ti.keys {
		j := 0
		for j < len(p) && p[j].seq < keepFrom {
			j++
		}
		if j == len(p) {
			delete(ti.keys, k)
		} else if j > 0 {
			ti.keys[k] = p[j:]
		}
	}
	return keepFrom, i
}

func (x *index) tenantNames() []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]string, 0, len(x.tenants))
	for t := range x.tenants {
		out = append(out, t)
	}
	return out
}

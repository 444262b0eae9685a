package dispatcher

import (
	"testing"
	"time"
)

// clearHealth trusts a key seen absent for healthSeenTTL, unless this
// instance noted a failure since, including one that raced the read.
func TestHealthCache(t *testing.T) {
	t.Parallel()
	c := newHealthCache()
	t0 := time.Now()
	if c.absent("k", t0) {
		t.Fatal("unknown key reported absent")
	}
	c.cleared("k", t0)
	if !c.absent("k", t0.Add(healthSeenTTL/2)) {
		t.Error("key seen absent just now not trusted")
	}
	if c.absent("k", t0.Add(healthSeenTTL)) {
		t.Error("key trusted absent past the TTL")
	}
	if c.absent("other", t0) {
		t.Error("another key reported absent")
	}

	// A failure noted after the key was seen absent invalidates it.
	c.failed("k")
	if c.absent("k", time.Now()) {
		t.Error("key trusted absent after a failure")
	}

	// A read that began before a failure was noted (it raced the
	// failure's write) does not mark the key absent; one after does.
	c.failed("r")
	before := time.Now().Add(-time.Millisecond)
	c.cleared("r", before)
	if c.absent("r", time.Now()) {
		t.Error("a read older than the failure marked the key absent")
	}
	after := time.Now()
	c.cleared("r", after)
	if !c.absent("r", after) {
		t.Error("a read newer than the failure did not mark the key absent")
	}
}

// Stale entries are dropped, so the map holds only recent subscriptions.
func TestHealthCachePrunes(t *testing.T) {
	t.Parallel()
	c := newHealthCache()
	old := time.Now().Add(-3 * healthSeenTTL)
	c.cleared("old", old)
	c.failed("fresh") // prunes: "old" is past the TTL
	c.mu.Lock()
	_, hasOld := c.m["old"]
	_, hasFresh := c.m["fresh"]
	c.mu.Unlock()
	if hasOld || !hasFresh {
		t.Errorf("after prune: old kept %v, fresh kept %v", hasOld, hasFresh)
	}
}

package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// TestListKeysUnderChurn lists a bucket while other keys under the same
// filter are created and deleted as fast as the server takes them: every
// listing holds the five keys that stood throughout, and no deleted one.
// jetstream's ListKeysFiltered missed standing keys in a few of every
// thousand such listings.
func TestListKeysUnderChurn(t *testing.T) {
	t.Parallel()
	s := natstest.Run(t)
	_, js := natstest.Connect(t, s.ClientURL())
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "churn", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := kv.Create(ctx, fmt.Sprintf("p.stable%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Create(ctx, "other.x", []byte("v")); err != nil {
		t.Fatal(err)
	}
	gone, _ := kv.Create(ctx, "p.gone", []byte("v"))
	if err := kv.Delete(ctx, "p.gone", jetstream.LastRevision(gone)); err != nil {
		t.Fatal(err)
	}
	churn, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprintf("p.tmp%d", g)
			for churn.Err() == nil {
				if rev, err := kv.Create(churn, k, []byte("v")); err == nil {
					_ = kv.Delete(churn, k, jetstream.LastRevision(rev))
				}
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	for i := range 500 {
		keys, err := bus.ListKeys(ctx, js, "churn", "p.*")
		if err != nil {
			t.Fatal(err)
		}
		stable := 0
		for _, k := range keys {
			switch {
			case strings.HasPrefix(k, "p.stable"):
				stable++
			case k == "p.gone" || k == "other.x":
				t.Fatalf("listing %d holds %s: %v", i, k, keys)
			}
		}
		if stable != 5 {
			t.Fatalf("listing %d holds %d of the 5 standing keys: %v", i, stable, keys)
		}
	}
	all, err := bus.ListKeys(ctx, js, "churn", "")
	if err != nil || !strings.Contains(strings.Join(all, ","), "other.x") {
		t.Fatalf("whole bucket: %v %v", all, err)
	}
	other, err := kv.Get(ctx, "other.x")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := bus.ListEntries(ctx, js, "churn", "other.*")
	if err != nil || len(entries) != 1 || entries[0].Key != "other.x" || string(entries[0].Value) != "v" || entries[0].Revision != other.Revision() {
		t.Fatalf("entries under other.*: %+v %v; want other.x = v at revision %d", entries, err, other.Revision())
	}
	none, err := bus.ListKeys(ctx, js, "churn", "nothing.*")
	if err != nil || len(none) != 0 {
		t.Fatalf("empty filter: %v %v", none, err)
	}
}

// TestListKeysBeyondOneSnapshot lists more keys than the server answers in
// one snapshot, which takes the scan.
func TestListKeysBeyondOneSnapshot(t *testing.T) {
	t.Parallel()
	s := natstest.Run(t)
	_, js := natstest.Connect(t, s.ClientURL())
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "big", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1100
	for i := range n {
		if _, err := kv.Put(ctx, fmt.Sprintf("k.%04d", i), fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "k.0007"); err != nil {
		t.Fatal(err)
	}
	keys, err := bus.ListKeys(ctx, js, "big", "k.*")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != n-1 || keys[0] != "k.0000" || keys[7] != "k.0008" || keys[n-2] != fmt.Sprintf("k.%04d", n-1) {
		t.Fatalf("%d keys, want %d without k.0007: %v ... %v", len(keys), n-1, keys[:9], keys[len(keys)-2:])
	}
	entries, err := bus.ListEntries(ctx, js, "big", "k.*")
	if err != nil || len(entries) != n-1 || string(entries[8].Value) != "v9" || entries[8].Revision != 10 {
		t.Fatalf("entries: %d, %v; want %d with k.0009 = v9 at revision 10", len(entries), err, n-1)
	}
}

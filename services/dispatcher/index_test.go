package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// TestIndexLoadsUnderChurnAndStopsCleanly starts and stops the index again
// and again while other subscriptions are created and deleted as fast as
// the server takes them: once loaded it holds the five that stood
// throughout, and cancelling it is a clean stop, not an error (a watch
// closed by the cancel used to be reported as "watch closed").
func TestIndexLoadsUnderChurnAndStopsCleanly(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	_, js := natstest.Connect(t, ns.ClientURL())
	ctx := context.Background()
	topo := contract.Topology{Storage: jetstream.FileStorage}
	subs, err := js.CreateKeyValue(ctx, contract.Bucket(contract.BucketSubscriptions, topo))
	if err != nil {
		t.Fatal(err)
	}
	tenants, err := js.CreateKeyValue(ctx, contract.Bucket(contract.BucketTenants, topo))
	if err != nil {
		t.Fatal(err)
	}
	record := func(id string) []byte {
		b, _ := json.Marshal(subscription.Subscription{ID: id, Tenant: "acme", URL: "https://example.com/h", Events: []string{"*"}})
		return b
	}
	for i := range 5 {
		id := fmt.Sprintf("stable%d", i)
		if _, err := subs.Create(ctx, subscription.Key("acme", id), record(id)); err != nil {
			t.Fatal(err)
		}
	}
	churn, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("tmp%d", g)
			for churn.Err() == nil {
				if rev, err := subs.Create(churn, subscription.Key("acme", id), record(id)); err == nil {
					_ = subs.Delete(churn, subscription.Key("acme", id), jetstream.LastRevision(rev))
				}
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for round := range 300 {
		x := newIndex()
		wctx, cancel := context.WithCancel(ctx)
		loaded := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- x.watch(wctx, subs, tenants, loaded, log) }()
		select {
		case <-loaded:
		case err := <-done:
			cancel()
			t.Fatalf("round %d: watch ended: %v", round, err)
		case <-time.After(30 * time.Second):
			cancel()
			t.Fatalf("round %d: not loaded in 30s", round)
		}
		x.mu.RLock()
		n := 0
		for i := range 5 {
			if x.byKey[subscription.Key("acme", fmt.Sprintf("stable%d", i))] != nil {
				n++
			}
		}
		x.mu.RUnlock()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n != 5 {
			t.Fatalf("round %d: loaded with %d of the 5 standing subscriptions", round, n)
		}
	}
}

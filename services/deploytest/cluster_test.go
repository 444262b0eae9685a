package deploytest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// Three processes from cluster.conf form a JetStream cluster that holds an
// R3 stream, stays writable with one node killed, and catches the node up
// when it returns.
func TestClusterR3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nats-server processes; run without -short")
	}
	t.Parallel()
	nodes := startCluster(t)
	urls := make([]string, len(nodes))
	for i, p := range nodes {
		urls[i] = p.url()
	}
	admin := connect(t, strings.Join(urls, ","), "admin")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	cfg := contract.EventsStream(contract.Topology{Replicas: 3, Storage: jetstream.FileStorage})
	var stream jetstream.Stream
	natstest.Eventually(t, 30*time.Second, func() error { // until the meta leader is elected
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		defer rcancel()
		var err error
		stream, err = admin.js.CreateOrUpdateStream(rctx, cfg)
		return err
	})
	current := func() error { return replicasCurrent(ctx, admin.js, cfg.Name) }
	natstest.Eventually(t, 30*time.Second, current)

	publish := func(id string) error {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		defer pcancel()
		_, err := admin.js.Publish(pctx, contract.EventSubject("acme", "x"), []byte(id), jetstream.WithMsgID(id))
		return err
	}
	if err := publish("before"); err != nil {
		t.Fatalf("publish to R3 stream: %v", err)
	}

	// Kill the stream leader: the others elect a new one and take writes.
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var victim *proc
	for _, p := range nodes {
		if p.name == info.Cluster.Leader {
			victim = p
		}
	}
	if victim == nil {
		t.Fatalf("leader %q is none of the nodes", info.Cluster.Leader)
	}
	victim.kill(t)
	natstest.Eventually(t, 30*time.Second, func() error { return publish("during") })

	victim.start(t)
	natstest.Eventually(t, 60*time.Second, current)
	natstest.Eventually(t, 30*time.Second, func() error { return publish("after") })
	info, err = stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages, want 3", info.State.Msgs)
	}
}

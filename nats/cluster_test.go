package natsconf

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/contract"
	"github.com/heraldhq/herald/pkg/natstest"
)

// Three processes from cluster.conf form a JetStream cluster that holds an
// R3 stream, stays writable with one node killed, and catches the node up
// when it returns.
func TestClusterR3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nats-server processes; run without -short")
	}
	t.Parallel()
	nodes := make([]*proc, 3)
	routes := make([]int, 3)
	for i := range nodes {
		nodes[i] = &proc{name: fmt.Sprintf("nats-%d", i+1), port: freePort(t), mport: freePort(t)}
		routes[i] = freePort(t)
	}
	for i, p := range nodes {
		dir := t.TempDir()
		repl := []string{
			"store_dir: /data", "store_dir: " + filepath.Join(dir, "data"),
			"\nport: 4222", fmt.Sprintf("\nport: %d", p.port),
			"http_port: 8222", fmt.Sprintf("http_port: %d", p.mport),
			"  port: 6222", fmt.Sprintf("  port: %d", routes[i]),
		}
		for j := range nodes {
			repl = append(repl, fmt.Sprintf("nats-%d:6222", j+1), fmt.Sprintf("127.0.0.1:%d", routes[j]))
		}
		p.conf = writeConf(t, dir, "cluster.conf", repl...)
	}
	for _, p := range nodes {
		p.start(t)
		t.Cleanup(func() { p.kill(t) })
	}
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
	current := func() error {
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return fmt.Errorf("no stream leader")
		}
		if n := 1 + len(info.Cluster.Replicas); n != 3 {
			return fmt.Errorf("%d replicas, want 3", n)
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return fmt.Errorf("replica %s not current (offline %v)", r.Name, r.Offline)
			}
		}
		return nil
	}
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

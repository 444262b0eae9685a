// Package natstest gives each test its own embedded nats-server with
// JetStream on a temp dir, and a polling helper that replaces sleeps.
package natstest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/transport/natsembed"
)

// Server is a running test server and a client connected to it.
type Server struct {
	*server.Server
	NC  *nats.Conn
	JS  jetstream.JetStream
	Dir string
}

// Run starts a JetStream server on a free port and a temp dir, and stops it
// when the test ends.
func Run(t testing.TB) *Server {
	t.Helper()
	return RunInDir(t, t.TempDir(), -1)
}

// RunInDir starts a server on dir and port, so a test can restart a server
// on the same storage and address.
func RunInDir(t testing.TB, dir string, port int) *Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Options{StoreDir: dir, Port: port})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	nc, js := Connect(t, s.ClientURL())
	return &Server{Server: s, NC: nc, JS: js, Dir: dir}
}

// Connect opens a client connection that is closed when the test ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Eventually polls f every 20ms until it returns nil or timeout passes, then
// fails the test with f's last error.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Errorf is fmt.Errorf, for terse Eventually closures.
var Errorf = fmt.Errorf

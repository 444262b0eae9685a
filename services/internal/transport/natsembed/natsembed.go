// Package natsembed runs a nats-server with JetStream inside the process:
// the storage of Herald's embedded default and of every bus test.
package natsembed

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options for an embedded server.
type Options struct {
	// StoreDir holds JetStream's files. Required.
	StoreDir string
	// Host and Port to listen on; Port -1 picks a free port, 0 means 4222.
	Host string
	Port int
	// SyncAlways fsyncs every write before acking (sync_interval: always).
	SyncAlways bool
	// Logs turns on the server's own logging.
	Logs bool
}

// Start runs a server and waits until it accepts connections and
// JetStream is ready.
func Start(o Options) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("natsembed: StoreDir is required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName: "herald-embedded",
		Host:       o.Host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoLog:      !o.Logs,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	if o.SyncAlways {
		opts.SyncAlways = true
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: %w", err)
	}
	if o.Logs {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("natsembed: server not ready after 30s")
	}
	return s, nil
}

// Package bus is Herald's thin layer over the nats.go jetstream package: it
// connects, ensures the streams and buckets a service owns, publishes
// CloudEvents with a deterministic Nats-Msg-Id and the trace context in the
// headers, and runs consume loops that map a handler's result to Ack,
// NakWithDelay or Term in one place.
//
// It deliberately does not hide jetstream: callers use jetstream.Consumer,
// jetstream.KeyValue and friends directly.
package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConnConfig says how a service reaches NATS. Every field comes from the
// environment in the per-service binaries.
type ConnConfig struct {
	URL       string // NATS_URL, comma-separated server URLs
	Name      string // client name shown by `nats server report connections`
	CredsFile string // NATS_CREDS, a .creds file
	User      string // NATS_USER
	Password  string // NATS_PASSWORD
	TLSCA     string // NATS_TLS_CA, PEM file of the CA to trust
	TLSCert   string // NATS_TLS_CERT, client certificate PEM file
	TLSKey    string // NATS_TLS_KEY, client key PEM file
}

// ConnConfigFromEnv reads the NATS_* variables.
func ConnConfigFromEnv(getenv func(string) string, name string) ConnConfig {
	c := ConnConfig{
		URL:       getenv("NATS_URL"),
		Name:      name,
		CredsFile: getenv("NATS_CREDS"),
		User:      getenv("NATS_USER"),
		Password:  getenv("NATS_PASSWORD"),
		TLSCA:     getenv("NATS_TLS_CA"),
		TLSCert:   getenv("NATS_TLS_CERT"),
		TLSKey:    getenv("NATS_TLS_KEY"),
	}
	if c.URL == "" {
		c.URL = nats.DefaultURL
	}
	return c
}

// Validate reports every problem with the config at once.
func (c ConnConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("NATS_URL is empty"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("NATS_TLS_CERT and NATS_TLS_KEY must be set together"))
	}
	if c.CredsFile != "" && c.User != "" {
		errs = append(errs, errors.New("NATS_CREDS and NATS_USER are exclusive"))
	}
	return errors.Join(errs...)
}

// Connect opens a connection that reconnects forever: a service that loses
// NATS reports not-ready and keeps trying instead of exiting.
func Connect(cfg ConnConfig) (*nats.Conn, jetstream.JetStream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.TLSCA != "" || cfg.TLSCert != "" {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

func tlsConfig(cfg ConnConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSCA != "" {
		pem, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("read NATS_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("NATS_TLS_CA holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load NATS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// StreamManager is the part of jetstream.JetStream that ensures streams.
type StreamManager interface {
	CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error)
}

// EnsureStreams creates or updates each stream. Call it only for the streams
// the calling service writes.
func EnsureStreams(ctx context.Context, js StreamManager, cfgs ...jetstream.StreamConfig) error {
	for _, c := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, c); err != nil {
			return fmt.Errorf("ensure stream %s: %w", c.Name, err)
		}
	}
	return nil
}

// KeyValueManager is the part of jetstream.JetStream that ensures buckets.
type KeyValueManager interface {
	CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error)
}

// EnsureBucket creates or updates a KV bucket and returns it.
func EnsureBucket(ctx context.Context, js KeyValueManager, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// WaitForBucket returns a bucket that another service owns, waiting until
// it exists or ctx ends. Readers use it so that start-up order is free.
func WaitForBucket(ctx context.Context, js jetstream.KeyValueManager, name string) (jetstream.KeyValue, error) {
	for {
		kv, err := js.KeyValue(ctx, name)
		if err == nil {
			return kv, nil
		}
		if !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
			return nil, fmt.Errorf("open bucket %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for bucket %s: %w", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WaitForStream returns a stream that another service owns, waiting until it
// exists or ctx ends.
func WaitForStream(ctx context.Context, js jetstream.StreamManager, name string) (jetstream.Stream, error) {
	for {
		s, err := js.Stream(ctx, name)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
			return nil, fmt.Errorf("open stream %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for stream %s: %w", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// EnsureConsumer waits for a stream that another service writes, then
// creates or updates the caller's durable consumer on it.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if _, err := WaitForStream(ctx, js, stream); err != nil {
		return nil, err
	}
	c, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}

// Drain drains nc and waits until it is closed, at most timeout. nc.Drain
// only starts the drain: a caller that exits or stops an embedded server
// right after it would cut short the acks and publishes still in flight.
// Drain sets nc's closed handler.
func Drain(nc *nats.Conn, timeout time.Duration) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		return err
	}
	select {
	case <-closed:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("NATS connection still draining after %s", timeout)
	}
}

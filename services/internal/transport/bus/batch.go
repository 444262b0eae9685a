package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Atomic batch publish headers (nats-server 2.12+, ADR-50).
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)

// DefaultMaxBatch bounds one atomic batch; the server refuses batches over
// its own limit (1000 messages by default).
const DefaultMaxBatch = 256

// DefaultMinAtomicBatch is the smallest batch sent as an atomic batch;
// smaller ones are published message by message, all in flight at once.
// On one server with file storage nats-server stages an atomic batch in a
// temporary file store, which costs about as much as 10-20 fsynced writes
// on the reference machine (BenchmarkDurableWrite), so a small atomic
// batch would be slower than its messages sent one by one. On a replicated
// stream the batch is staged in memory and proposed once: there a minimum
// of 2 is right (HERALD_MIN_ATOMIC_BATCH).
const DefaultMinAtomicBatch = 16

// batchCommitTimeout bounds the wait for a batch's commit acknowledgement.
const batchCommitTimeout = 10 * time.Second

// Batcher is a group committer for one stream: the publishes of many
// concurrent callers are sent as one JetStream atomic batch, and each
// caller's publish returns once the batch that holds it is stored. On a
// single server with sync_interval: always, nats-server syncs an atomic
// batch once (it coalesces the R1 durability boundary), so a batch of n
// records costs one fsync instead of n; on a replicated stream the batch
// is one Raft proposal. While one batch is being committed the next one
// gathers, so batches grow with load and a lone publish is not delayed.
//
// A batch that the server refuses as a whole (one of its Nats-Msg-Ids is a
// duplicate, or a limit) is published again message by message, so each
// caller gets the answer a plain publish would have given: nothing is
// acknowledged that is not stored, and a duplicate is reported as one.
//
// The stream must allow atomic publish (contract configs set
// AllowAtomicPublish). Publishes that carry options (a schedule, an
// expected sequence) bypass the batch. Run must be running for Publish to
// make progress; Publish fails with ctx's error if it does not.
type Batcher struct {
	nc     *nats.Conn
	js     Publisher
	stream string
	max    int
	// minAtomic is the smallest batch sent atomically.
	minAtomic int
	log       *slog.Logger
	in        chan *batchItem
	// closed is set when Run stops: later publishes go straight to js.
	closed atomic.Bool
}

type batchItem struct {
	msg  *nats.Msg
	done func(*jetstream.PubAck, error)
}

// NewBatcher returns a batcher for stream over nc and js (js publishes the
// fallback and the unbatchable messages). max < 1 means DefaultMaxBatch.
func NewBatcher(nc *nats.Conn, js Publisher, stream string, max int, log *slog.Logger) *Batcher {
	if max < 1 {
		max = DefaultMaxBatch
	}
	if log == nil {
		log = slog.Default()
	}
	return &Batcher{nc: nc, js: js, stream: stream, max: max, minAtomic: DefaultMinAtomicBatch, log: log, in: make(chan *batchItem, 4*max)}
}

// WithMinAtomic sets the smallest batch sent atomically (at least 2) and
// returns b.
func (b *Batcher) WithMinAtomic(n int) *Batcher {
	b.minAtomic = max(2, n)
	return b
}

// PublishMsg stores msg with the next batch and returns its ack. It
// satisfies Publisher, so PublishEvent can go through a Batcher.
func (b *Batcher) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if len(opts) > 0 {
		return b.js.PublishMsg(ctx, msg, opts...)
	}
	type answer struct {
		ack *jetstream.PubAck
		err error
	}
	ch := make(chan answer, 1)
	if err := b.Submit(ctx, msg, func(ack *jetstream.PubAck, err error) { ch <- answer{ack, err} }); err != nil {
		return nil, err
	}
	select {
	case a := <-ch:
		return a.ack, a.err
	case <-ctx.Done():
		// The record may still be stored with its batch; the caller's
		// retry is deduplicated by its Nats-Msg-Id.
		return nil, ctx.Err()
	}
}

// Submit queues msg for the next batch; done is called exactly once, from
// a goroutine of the batcher's, when the batch is stored or has failed. done
// must not block.
func (b *Batcher) Submit(ctx context.Context, msg *nats.Msg, done func(*jetstream.PubAck, error)) error {
	if b.closed.Load() {
		// A publish during or after a shutdown (an HTTP request still
		// being answered) is stored on its own rather than left waiting.
		ack, err := b.js.PublishMsg(ctx, msg)
		done(ack, err)
		return nil
	}
	select {
	case b.in <- &batchItem{msg: msg, done: done}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drainIdle is how long a stopping Batcher keeps answering publishes that
// were queued as it stopped.
const drainIdle = 100 * time.Millisecond

// Run commits batches until ctx is cancelled, then commits what is queued
// (and what callers that saw it open still queue) and returns nil.
func (b *Batcher) Run(ctx context.Context) error {
	batch := make([]*batchItem, 0, b.max)
	for {
		var first *batchItem
		select {
		case first = <-b.in:
		case <-ctx.Done():
			b.closed.Store(true)
			idle := time.NewTimer(drainIdle)
			defer idle.Stop()
			for {
				select {
				case it := <-b.in:
					b.commit(context.WithoutCancel(ctx), []*batchItem{it})
					idle.Reset(drainIdle)
				case <-idle.C:
					return nil
				}
			}
		}
		batch = append(batch[:0], first)
	gather:
		for len(batch) < b.max {
			select {
			case it := <-b.in:
				batch = append(batch, it)
			default:
				break gather
			}
		}
		b.commit(context.WithoutCancel(ctx), batch)
	}
}

func (b *Batcher) commit(ctx context.Context, batch []*batchItem) {
	if len(batch) < b.minAtomic {
		b.publishEach(ctx, batch)
		return
	}
	msgs := make([]*nats.Msg, len(batch))
	for i, it := range batch {
		msgs[i] = it.msg
	}
	acks, err := PublishAtomic(ctx, b.nc, b.stream, msgs)
	if err == nil {
		for i, it := range batch {
			it.done(acks[i], nil)
		}
		return
	}
	b.log.DebugContext(ctx, "atomic batch refused; publishing its messages one by one", "stream", b.stream, "size", len(batch), "error", err)
	b.publishEach(ctx, batch)
}

// batchAck is the server's answer to a batch commit.
type batchAck struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Count  int    `json:"count"`
	Error  *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// PublishAtomic stores msgs on stream as one JetStream atomic batch: all
// or none. Every message but the last goes without a reply (the server
// stages them), the last carries the commit and waits for the answer. The
// batch is stored contiguously, so message i gets seq last-n+1+i. The
// stream must allow atomic publish; a message may carry Nats-Msg-Id and
// the expected last sequence (per subject) headers, and one that fails its
// check fails the batch. The batch headers are removed again before
// PublishAtomic returns.
func PublishAtomic(ctx context.Context, nc *nats.Conn, stream string, msgs []*nats.Msg) ([]*jetstream.PubAck, error) {
	id := nuid.Next()
	n := len(msgs)
	defer func() {
		for _, m := range msgs {
			m.Header.Del(headerBatchID)
			m.Header.Del(headerBatchSeq)
			m.Header.Del(headerBatchCommit)
		}
	}()
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(headerBatchID, id)
		m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		if i < n-1 {
			if err := nc.PublishMsg(m); err != nil {
				return nil, err
			}
		}
	}
	last := msgs[n-1]
	last.Header.Set(headerBatchCommit, "1")
	cctx, cancel := context.WithTimeout(ctx, batchCommitTimeout)
	defer cancel()
	resp, err := nc.RequestMsgWithContext(cctx, last)
	if err != nil {
		return nil, fmt.Errorf("commit batch of %d on %s: %w", n, stream, err)
	}
	var a batchAck
	if err := json.Unmarshal(resp.Data, &a); err != nil {
		return nil, fmt.Errorf("commit batch of %d on %s: bad answer %q", n, stream, resp.Data)
	}
	if a.Error != nil {
		return nil, &jetstream.APIError{Code: a.Error.Code, ErrorCode: jetstream.ErrorCode(a.Error.ErrCode), Description: a.Error.Description}
	}
	if a.Count != n || a.Seq < uint64(n) {
		return nil, fmt.Errorf("commit batch of %d on %s: server stored %d ending at %d", n, stream, a.Count, a.Seq)
	}
	acks := make([]*jetstream.PubAck, n)
	for i := range msgs {
		acks[i] = &jetstream.PubAck{Stream: a.Stream, Sequence: a.Seq - uint64(n-1-i)}
	}
	return acks, nil
}

// publishEach publishes every message of a batch on its own, all in flight
// at once, and answers each caller with its own result.
func (b *Batcher) publishEach(ctx context.Context, batch []*batchItem) {
	if len(batch) == 1 {
		ack, err := b.js.PublishMsg(ctx, batch[0].msg)
		batch[0].done(ack, err)
		return
	}
	var wg sync.WaitGroup
	for _, it := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ack, err := b.js.PublishMsg(ctx, it.msg)
			it.done(ack, err)
		}()
	}
	wg.Wait()
}

// AllowAtomicPublish turns on atomic batch publish for a stream whose
// config another API owns (a KV bucket's stream), so a Batcher can write it.
func AllowAtomicPublish(ctx context.Context, js jetstream.StreamManager, stream string) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("allow atomic publish on %s: %w", stream, err)
	}
	cfg := st.CachedInfo().Config
	if cfg.AllowAtomicPublish {
		return nil
	}
	cfg.AllowAtomicPublish = true
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("allow atomic publish on %s: %w", stream, err)
	}
	return nil
}

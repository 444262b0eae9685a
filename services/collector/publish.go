package collector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/tenancy"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// Per-event outcomes.
const (
	statusAccepted  = "accepted"
	statusDuplicate = "duplicate"
	statusRejected  = "rejected"
)

// result is the verdict on one event, as the caller sees it.
type result struct {
	ID      string `json:"id,omitempty"`
	Source  string `json:"source,omitempty"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Pointer string `json:"pointer,omitempty"`
}

// publishConcurrency bounds in-flight publishes of one request: a batch
// waits for its acks in parallel instead of one round trip per event.
const publishConcurrency = 32

// MsgID is the Nats-Msg-Id of an event: the same source and id are stored
// once within the stream's duplicate window.
//
// The tenant is part of the hash: the duplicate window spans the whole
// stream, so without it one tenant could suppress (and probe for) another
// tenant's events by reusing their source and id.
func MsgID(tenant, source, id string) string {
	sum := sha256.Sum256([]byte(tenant + "\n" + source + "\n" + id))
	return hex.EncodeToString(sum[:])
}

// store validates every item and publishes the valid ones, returning only
// after JetStream acked each. Any publish error fails the whole request:
// the caller retries it, and the events already stored dedup.
func (s *Service) store(ctx context.Context, t tenancy.Tenant, items []item) ([]result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	results := make([]result, len(items))
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, publishConcurrency)
		errOnce  sync.Once
		firstErr error
	)
	for i := range items {
		it := &items[i]
		if it.err == nil {
			if fe := s.check(t, &it.ev); fe != nil {
				fe.Pointer = it.pointer + fe.Pointer
				it.err = fe
			}
		}
		results[i] = result{ID: it.ev.ID(), Source: it.ev.Source()}
		if it.err != nil {
			results[i].Status, results[i].Reason, results[i].Pointer = statusRejected, it.err.Detail, it.err.Pointer
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			e := it.ev
			if e.Time().IsZero() {
				// Stamp the acceptance time, so that what is derived from
				// the event (notifications, audit) has a real one.
				e.SetTime(time.Now().UTC())
			}
			ack, err := bus.PublishEvent(ctx, s.events, contract.EventSubject(t.ID, e.Type()), MsgID(t.ID, e.Source(), e.ID()), e)
			if err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
				return
			}
			results[i].Status = statusAccepted
			if ack.Duplicate {
				results[i].Status = statusDuplicate
			}
			s.metrics.Ingested(ctx, e.Type(), results[i].Status)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return results, nil
}

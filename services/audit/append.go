package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/auditchain"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// head is a tenant's chain head as stored in audit-heads.
type head struct {
	Seq       uint64 `json:"seq"`
	Hash      string `json:"hash"`
	StreamSeq uint64 `json:"streamSeq"` // AUDIT sequence of the head record; 0 once it expired
	Source    string `json:"source"`    // "<stream>:<seq>" of the input it recorded
}

type cachedHead struct {
	head
	rev uint64 // KV revision, 0 if absent
}

// maxConflicts bounds the re-read-and-retry loop; beyond it the message is
// nak'ed and redelivered, which also retries.
const maxConflicts = 20

// append adds r to its tenant's chain exactly once per input message.
//
// The chain is forked by nobody: the publish carries Nats-Msg-Id
// "<stream>:<seq>" of the input (a redelivery inside the duplicate window is
// dropped by JetStream) and expects the subject's last sequence to be the
// head's, so a second audit instance or a stale head makes the publish fail
// instead of appending a sibling. On that conflict the head is re-read from
// the stream itself (the truth; the KV head is a cache that a crash between
// publish and update can leave behind), repaired, and the append retried.
// A redelivery outside the window is caught by the index of recorded
// inputs and by comparing with the head's source.
func (s *Service) append(ctx context.Context, r *auditchain.Record) error {
	l := s.tenantLock(r.Tenant)
	l.Lock()
	defer l.Unlock()
	src := sourceKey(r.SourceStream, r.SourceSeq)
	srcID := sourceOf(r.SourceStream, r.SourceSeq)
	for i := 0; i < maxConflicts; i++ {
		if s.idx.hasSource(r.Tenant, srcID) {
			return nil
		}
		h, err := s.loadHead(ctx, r.Tenant, i > 0)
		if err != nil {
			return err
		}
		if h.Source == src {
			return nil
		}
		r.Seq, r.PrevHash = h.Seq+1, h.Hash
		raw, err := auditchain.Seal(r)
		if err != nil {
			return bus.Permanent(fmt.Errorf("seal audit record: %w", err))
		}
		e := event.New()
		e.SetID(r.Tenant + "-" + strconv.FormatUint(r.Seq, 10))
		e.SetSource("herald/audit")
		e.SetType(auditchain.TypeRecord)
		e.SetSubject(r.Kind)
		e.SetTime(r.At)
		e.SetExtension("tenant", r.Tenant)
		if err := e.SetData(event.ApplicationJSON, raw); err != nil {
			return bus.Permanent(err)
		}
		ack, err := bus.PublishEvent(ctx, s.deps.JS, contract.AuditSubject(r.Tenant), src, e,
			jetstream.WithExpectLastSequencePerSubject(h.StreamSeq))
		if isWrongLastSeq(err) {
			continue
		}
		if err != nil {
			return err
		}
		if ack.Duplicate {
			// Stored earlier under this msg id: our head may be stale.
			s.dropCache(r.Tenant)
			return nil
		}
		s.idx.markSource(r.Tenant, srcID)
		nh := cachedHead{head: head{Seq: r.Seq, Hash: r.Hash, StreamSeq: ack.Sequence, Source: src}, rev: h.rev}
		s.storeHead(ctx, r.Tenant, nh)
		return nil
	}
	return fmt.Errorf("audit chain of %s: %d conflicting appends in a row", r.Tenant, maxConflicts)
}

func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

func (s *Service) dropCache(tenant string) {
	s.headsMu.Lock()
	delete(s.cache, tenant)
	s.headsMu.Unlock()
}

// loadHead returns the tenant's head: the cached one, or after a conflict
// (reconcile) the last record on audit.<tenant>, falling back to the KV
// head when every record of the tenant has expired.
func (s *Service) loadHead(ctx context.Context, tenant string, reconcile bool) (cachedHead, error) {
	s.headsMu.Lock()
	h, ok := s.cache[tenant]
	s.headsMu.Unlock()
	if ok && !reconcile {
		return h, nil
	}
	var kvh cachedHead
	entry, err := s.heads.Get(ctx, tenant)
	switch {
	case err == nil:
		if err := json.Unmarshal(entry.Value(), &kvh.head); err != nil {
			return kvh, fmt.Errorf("audit head of %s: %w", tenant, err)
		}
		kvh.rev = entry.Revision()
	case errors.Is(err, jetstream.ErrKeyNotFound):
	default:
		return kvh, fmt.Errorf("read audit head of %s: %w", tenant, err)
	}
	if !reconcile {
		s.headsMu.Lock()
		s.cache[tenant] = kvh
		s.headsMu.Unlock()
		return kvh, nil
	}
	last, err := s.stream.GetLastMsgForSubject(ctx, contract.AuditSubject(tenant))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		// Nothing stored (new tenant, or all expired): continue from the KV
		// head's hash, with no record expected on the subject.
		kvh.StreamSeq = 0
	case err != nil:
		return kvh, fmt.Errorf("read last audit record of %s: %w", tenant, err)
	default:
		var r auditchain.Record
		if err := json.Unmarshal(last.Data, &r); err != nil || r.Hash == "" {
			return kvh, bus.Permanent(fmt.Errorf("last audit record of %s (seq %d) is undecodable; verify the chain", tenant, last.Sequence))
		}
		src := sourceKey(r.SourceStream, r.SourceSeq)
		s.idx.markSource(tenant, sourceOf(r.SourceStream, r.SourceSeq))
		kvh.head = head{Seq: r.Seq, Hash: r.Hash, StreamSeq: last.Sequence, Source: src}
	}
	s.storeHead(ctx, tenant, kvh)
	s.headsMu.Lock()
	h = s.cache[tenant]
	s.headsMu.Unlock()
	return h, nil
}

// storeHead caches h and CAS-writes it to audit-heads unless the bucket
// already holds a newer head. A failed KV write is not an error: the
// stream is the truth and the next conflict repairs the KV head.
func (s *Service) storeHead(ctx context.Context, tenant string, h cachedHead) {
	b, _ := json.Marshal(h.head)
	for i := 0; i < 5; i++ {
		var rev uint64
		var err error
		if h.rev == 0 {
			rev, err = s.heads.Create(ctx, tenant, b)
		} else {
			rev, err = s.heads.Update(ctx, tenant, b, h.rev)
		}
		if err == nil {
			h.rev = rev
			break
		}
		entry, gerr := s.heads.Get(ctx, tenant)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) {
			h.rev = 0
			continue
		}
		if gerr != nil {
			s.log.WarnContext(ctx, "audit head not stored", "tenant", tenant, "error", err)
			break
		}
		var cur head
		if json.Unmarshal(entry.Value(), &cur) == nil && cur.Seq >= h.Seq && cur.StreamSeq != 0 {
			h.head, h.rev = cur, entry.Revision()
			break
		}
		h.rev = entry.Revision()
	}
	s.headsMu.Lock()
	s.cache[tenant] = h
	s.headsMu.Unlock()
}

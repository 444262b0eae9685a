package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// The CHANGES record of a write travels in the write itself. A tenant or
// subscription record is stored with its change in "outbox" (one KV write:
// both or neither); then the change is published to CHANGES with
// Nats-Msg-Id = its id, and the outbox is cleared with a compare-and-set. A
// deletion is first an update that puts the "deleted" change in the
// outbox, then the delete. A crash anywhere leaves the change in the record:
//
//   - the sweeper (Run) finds outboxes older than OutboxSweep in both
//     buckets and settles them: publish, then clear or delete;
//   - a write to a record whose outbox is still there publishes it first,
//     so no change is overwritten unrecorded.
//
// A change published twice (the publish landed, the clear did not) is
// dropped by the CHANGES stream's duplicate window (10 minutes); only if no
// registry runs for longer than that after such a crash can CHANGES hold a
// record twice, with the same id. The dispatcher's disable() rewrites
// subscription records member by member, so it keeps an outbox.

// outbox is a change waiting in the record it describes.
type outbox struct {
	Subject string          `json:"subject"`
	Event   json.RawMessage `json:"event"` // the CloudEvent, structured
	At      time.Time       `json:"at"`
	Delete  bool            `json:"delete,omitempty"` // the change is the record's deletion
}

// newChange builds the CHANGES record of a change to entity id of tenant,
// with the caller as actor and a redacted diff of the two views.
func (s *Service) newChange(ctx context.Context, tenant, entity, id, action string, before, after any) json.RawMessage {
	actor := "unknown"
	if p, ok := apiauth.FromContext(ctx); ok && p.Actor != "" {
		actor = p.Actor
	}
	ch := payload.Change{
		Tenant: tenant, Entity: entity, EntityID: id, Action: action, Actor: actor,
		At: s.now().UTC(), Diff: diff(before, after),
	}
	if len(ch.Diff) == 0 {
		ch.Diff = nil
	}
	e := event.New()
	e.SetID(newID("chg"))
	e.SetSource(Source)
	e.SetType(payload.TypeChangePrefix + entity + "." + action)
	e.SetSubject(id)
	e.SetTime(ch.At)
	e.SetExtension("tenant", tenant)
	_ = e.SetData(event.ApplicationJSON, ch)
	ev, _ := json.Marshal(e)
	b, _ := json.Marshal(outbox{Subject: contract.ChangeSubject(tenant, entity), Event: ev, At: ch.At, Delete: action == "deleted"})
	return b
}

// flushLeftover publishes the outbox a record was read with, if any, so a
// write that replaces it loses no change.
func (s *Service) flushLeftover(ctx context.Context, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var ob outbox
	if err := json.Unmarshal(raw, &ob); err != nil {
		return fmt.Errorf("decode outbox: %w", err)
	}
	return s.publishOutbox(ctx, ob)
}

func (s *Service) publishOutbox(ctx context.Context, ob outbox) error {
	var e event.Event
	if err := json.Unmarshal(ob.Event, &e); err != nil {
		return fmt.Errorf("decode outbox event: %w", err)
	}
	ctx = context.WithoutCancel(ctx)
	var err error
	for i := range 3 {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = bus.PublishEvent(pctx, s.js, ob.Subject, e.ID(), e)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
	}
	return err
}

// settle publishes the outbox of the record key, written at rev as raw,
// then clears it from the record, or deletes the record for a deletion,
// with a compare-and-set on rev. A failure is logged and left to the
// sweeper; it returns whether the record is settled.
func (s *Service) settle(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64, raw []byte) bool {
	ctx = context.WithoutCancel(ctx)
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(raw, &rec); err != nil || len(rec["outbox"]) == 0 {
		return err == nil
	}
	var ob outbox
	if err := json.Unmarshal(rec["outbox"], &ob); err != nil {
		s.log.ErrorContext(ctx, "undecodable outbox", "bucket", kv.Bucket(), "key", key, "error", err)
		return false
	}
	if err := s.publishOutbox(ctx, ob); err != nil {
		s.log.WarnContext(ctx, "publish change; the sweeper retries", "bucket", kv.Bucket(), "key", key, "error", err)
		return false
	}
	var err error
	if ob.Delete {
		err = kv.Delete(ctx, key, jetstream.LastRevision(rev))
	} else {
		delete(rec, "outbox")
		b, _ := json.Marshal(rec)
		_, err = kv.Update(ctx, key, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false // written since: the writer flushed it, or the sweeper will
	}
	if err != nil {
		s.log.WarnContext(ctx, "settle change; the sweeper retries", "bucket", kv.Bucket(), "key", key, "error", err)
		return false
	}
	return true
}

// sweep settles every outbox older than OutboxSweep in both buckets: the
// changes of requests that stopped between their write and its settling.
func (s *Service) sweep(ctx context.Context) {
	for _, kv := range []jetstream.KeyValue{s.tenantKV(), s.subKV()} {
		keys, err := s.listKeys(ctx, kv, "")
		if err != nil {
			s.log.WarnContext(ctx, "outbox sweep: list keys", "bucket", kv.Bucket(), "error", err)
			continue
		}
		for _, k := range keys {
			e, err := kv.Get(ctx, k)
			if err != nil {
				continue // deleted meanwhile, or retried on the next sweep
			}
			var rec struct {
				Outbox *outbox `json:"outbox"`
			}
			if json.Unmarshal(e.Value(), &rec) != nil || rec.Outbox == nil || s.now().Sub(rec.Outbox.At) < s.cfg.OutboxSweep {
				continue
			}
			if s.settle(ctx, kv, k, e.Revision(), e.Value()) {
				s.log.InfoContext(ctx, "settled a change left in its record", "bucket", kv.Bucket(), "key", k)
			}
		}
	}
}

// sweepLoop runs sweep every OutboxSweep until ctx ends.
func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.OutboxSweep)
	defer t.Stop()
	for {
		s.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// write stores rec at key with change as its outbox (Create when rev is 0,
// else Update on rev), then settles the change: publishes it and clears
// the outbox, or deletes the record when the change is its deletion. The
// outbox of the version being replaced (leftover) is published first. A
// conflict is jetstream.ErrKeyExists; once the write is stored, a failure
// to settle is left to the sweeper and not returned.
func (s *Service) write(ctx context.Context, kv jetstream.KeyValue, key string, rev uint64, rec any, leftover, change json.RawMessage) error {
	if err := s.flushLeftover(ctx, leftover); err != nil {
		return fmt.Errorf("publish the change left in %s: %w", key, err)
	}
	raw, err := withOutbox(rec, change)
	if err != nil {
		return err
	}
	if rev == 0 {
		rev, err = kv.Create(ctx, key, raw)
	} else {
		rev, err = kv.Update(ctx, key, raw, rev)
	}
	if err != nil {
		return err
	}
	s.settle(ctx, kv, key, rev, raw)
	return nil
}

// withOutbox marshals rec with change as its "outbox" member.
func withOutbox(rec any, change json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["outbox"] = change
	return json.Marshal(m)
}

// pendingDelete reports whether a record's outbox is its deletion: the
// record is gone for the API, and the sweeper finishes deleting it.
func pendingDelete(raw json.RawMessage) bool {
	var ob struct {
		Delete bool `json:"delete"`
	}
	return len(raw) > 0 && json.Unmarshal(raw, &ob) == nil && ob.Delete
}

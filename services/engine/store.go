package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/engine/alertfsm"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// maxCASRetries bounds the re-read/re-apply loop of one input; beyond it the
// input is nak'ed and redelivered later rather than dropped.
const maxCASRetries = 100

// source is the CloudEvent source of engine-made notifications.
const source = "herald/engine"

// transact runs the read, flush, apply, CAS, publish, clear cycle of the
// package doc on one record. pending points into the record's Pending
// field; apply mutates the record and returns what it emits. publish is
// called for every notification, fresh or flushed.
func transact[R any](ctx context.Context, kv jetstream.KeyValue, key string,
	pending func(*R) *[]alertfsm.Notification,
	apply func(*R) (bool, []alertfsm.Notification),
	publish func(context.Context, alertfsm.Notification) error,
) error {
	for range maxCASRetries {
		var rec R
		var rev uint64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("read %s: %w", key, err)
		default:
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				return bus.Permanent(fmt.Errorf("decode record %s: %w", key, err))
			}
			rev = e.Revision()
		}
		p := pending(&rec)
		for _, n := range *p {
			if err := publish(ctx, n); err != nil {
				return err
			}
		}
		changed, out := apply(&rec)
		if !changed {
			if len(*p) > 0 {
				*p = nil
				_, _ = casWrite(ctx, kv, key, &rec, rev) // a conflict means a newer writer flushed it
			}
			return nil
		}
		*p = out
		newRev, err := casWrite(ctx, kv, key, &rec, rev)
		if errors.Is(err, jetstream.ErrKeyExists) {
			continue // another worker or instance won: re-read and re-apply
		}
		if err != nil {
			return err
		}
		for _, n := range out {
			if err := publish(ctx, n); err != nil {
				return err // the redelivery flushes it
			}
		}
		if len(out) > 0 {
			*p = nil
			_, _ = casWrite(ctx, kv, key, &rec, newRev) // on conflict the newer writer flushed it
		}
		return nil
	}
	return fmt.Errorf("record %s: %d CAS conflicts in a row", key, maxCASRetries)
}

// casWrite writes rec if key is still at rev (0: absent) and returns the new
// revision; a conflict is jetstream.ErrKeyExists.
func casWrite[R any](ctx context.Context, kv jetstream.KeyValue, key string, rec *R, rev uint64) (uint64, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev, err = kv.Create(ctx, key, b)
	} else {
		rev, err = kv.Update(ctx, key, b, rev)
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	return rev, err
}

// publishNotification publishes n for tenant with n.ID as CloudEvent id and
// Nats-Msg-Id.
func (s *Service) publishNotification(ctx context.Context, tenant string, n alertfsm.Notification) error {
	e := event.New()
	e.SetID(n.ID)
	e.SetSource(source)
	e.SetType(n.Type)
	e.SetSubject(n.Subject)
	e.SetTime(n.Time)
	e.SetExtension("tenant", tenant)
	if err := e.SetData(event.ApplicationJSON, json.RawMessage(n.Data)); err != nil {
		return err
	}
	_, err := bus.PublishEvent(ctx, s.notifications, contract.NotificationSubject(tenant, n.Type), n.ID, e)
	if err == nil {
		s.metrics.Notified(ctx, e.Type())
	}
	return err
}

// recordKey makes a KV key from a tenant and a free-form key: kept readable
// when it is already a valid token, hashed otherwise.
func recordKey(tenant, key string) string {
	if contract.ValidateToken(key) == nil {
		return tenant + "." + key
	}
	h := sha256.Sum256([]byte(key))
	return tenant + "." + hex.EncodeToString(h[:16])
}

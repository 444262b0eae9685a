package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/heraldhq/herald/pkg/apiauth"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/contract"
	"github.com/heraldhq/herald/pkg/payload"
)

// Source is the CloudEvent source of the registry's CHANGES records.
const Source = "herald/registry"

// redacted replaces the value of any field that could hold a secret. The
// views that are diffed carry no secrets; this is the second line.
const redacted = "[redacted]"

var secretFields = map[string]bool{
	"secret": true, "secrets_plain": true, "password": true, "token": true, "client_key": true,
	"password_sealed": true, "token_sealed": true, "client_key_sealed": true, "ed25519_key_sealed": true, "sealed": true,
}

// diff compares two views field by field. A nil side means created or
// deleted. Fields are compared before they are redacted, so a changed
// secret (a header's value, seen as its hint) is recorded as a change,
// with both sides redacted.
func diff(before, after any) map[string]payload.FieldDelta {
	b, a := toMap(before), toMap(after)
	out := map[string]payload.FieldDelta{}
	for k, nv := range a {
		if ov, ok := b[k]; !ok || !reflect.DeepEqual(ov, nv) {
			out[k] = payload.FieldDelta{Old: redact(k, ov), New: redact(k, nv)}
		}
	}
	for k, ov := range b {
		if _, ok := a[k]; !ok {
			out[k] = payload.FieldDelta{Old: redact(k, ov)}
		}
	}
	delete(out, "updated_at")
	return out
}

func toMap(v any) map[string]any {
	if v == nil || (reflect.ValueOf(v).Kind() == reflect.Pointer && reflect.ValueOf(v).IsNil()) {
		return nil
	}
	raw, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// scrub redacts secret-named members at any depth.
func scrub(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if h, ok := x.(map[string]any); ok && k == "headers" {
				// Secret headers show only a hint, and a plain one may
				// still be a credential its writer did not mark: no
				// header value, hint or not, goes to CHANGES.
				for hk := range h {
					h[hk] = redacted
				}
				continue
			}
			if secretFields[k] {
				t[k] = redacted
			} else {
				t[k] = scrub(x)
			}
		}
	case []any:
		for i, x := range t {
			t[i] = scrub(x)
		}
	}
	return v
}

// redact is a top-level field's value as CHANGES records it.
func redact(k string, v any) any {
	if v == nil {
		return nil
	}
	if secretFields[k] {
		return redacted
	}
	return scrub(map[string]any{k: v}).(map[string]any)[k]
}

// recordChange publishes a CHANGES record. The change is already stored,
// so a failed publish is retried briefly and then logged: the record is
// lost, not the change. (An outbox would close that gap.)
func (s *Service) recordChange(ctx context.Context, tenant, entity, id, action string, before, after any) {
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
	ctx = context.WithoutCancel(ctx)
	var err error
	for i := range 3 {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = bus.PublishEvent(pctx, s.js, contract.ChangeSubject(tenant, entity), e.ID(), e)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
	}
	s.log.ErrorContext(ctx, "record change", "tenant", tenant, "entity", entity, "entity_id", id, "action", action, "error", err)
}

// newID returns prefix + "_" + 16 random bytes in hex: a subject token.
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

package registry

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"reflect"

	"github.com/heraldhq/herald/services/internal/domain/payload"
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

// newID returns prefix + "_" + 16 random bytes in hex: a subject token.
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

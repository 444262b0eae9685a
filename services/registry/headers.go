package registry

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/http"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
)

// Custom headers often carry credentials (X-Api-Key). A header the caller
// marks secret, or whose name says it is a credential
// (subscription.IsSecretHeader), is sealed like the auth secrets: its
// value is never returned, only a hint, and an empty value on PATCH keeps
// the stored one, so a view read back and resent changes nothing.
//
// As written, a header's value is a string, or
// {"value": "...", "secret": true}; as shown, a secret header is
// {"secret": true, "hint": "…wxyz"}.

// headerInputs are the headers as written, each parsed by
// parseHeaderValue so that a bad one gets a field error with its pointer.
type headerInputs map[string]json.RawMessage

// headerView is a secret header as views show it.
type headerView struct {
	Secret bool   `json:"secret"`
	Hint   string `json:"hint"`
}

// viewHeaders merges plain and secret headers into the view's map. A
// plain header named like a credential (stored before such headers were
// sealed) is shown by its hint too.
func viewHeaders(s subscription.Subscription) map[string]any {
	if len(s.Headers)+len(s.SecretHeaders) == 0 {
		return nil
	}
	out := make(map[string]any, len(s.Headers)+len(s.SecretHeaders))
	for k, v := range s.Headers {
		if subscription.IsSecretHeader(k) {
			out[k] = headerView{Secret: true, Hint: subscription.HeaderHint(v)}
			continue
		}
		out[k] = v
	}
	for k, h := range s.SecretHeaders {
		out[k] = headerView{Secret: true, Hint: h.Hint}
	}
	return out
}

// parseHeaderValue reads one header as written; ok is false for any other
// JSON shape. A missing value is "", which keeps a stored secret.
func parseHeaderValue(raw json.RawMessage) (value string, secret, ok bool) {
	var str string
	if err := json.Unmarshal(raw, &str); err == nil {
		return str, false, true
	}
	var obj struct {
		Value  *string `json:"value"`
		Secret bool    `json:"secret"`
		Hint   string  `json:"hint"` // a view read back; ignored
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obj); err != nil {
		return "", false, false
	}
	if obj.Value != nil {
		value = *obj.Value
	}
	return value, obj.Secret, true
}

// applyHeaders replaces sub's custom headers with in, sealing the secret
// ones and keeping a stored secret where in leaves its value empty.
//
// The header rules are the domain's: a bad name or value is reported here,
// where the value is still plain text, and left out; the count and
// case-insensitive duplicates are Validate's, on the result.
func (s *Service) applyHeaders(in headerInputs, sub *subscription.Subscription, errs *fieldErrors) {
	old := *sub
	plain, secret := map[string]string{}, map[string]subscription.SecretHeader{}
	for name, raw := range in {
		ptr := "/headers/" + subscription.EscapePointer(name)
		v, marked, ok := parseHeaderValue(raw)
		if !ok {
			errs.add(ptr, `want a string, or an object {"value": "...", "secret": true}`)
			continue
		}
		if p := cmp.Or(subscription.HeaderNameProblem(name), subscription.HeaderValueProblem(v)); p != "" {
			errs.add(ptr, "%s", p)
			continue
		}
		canon := http.CanonicalHeaderKey(name)
		if !marked && !subscription.IsSecretHeader(name) {
			plain[name] = v
			continue
		}
		if v == "" {
			kept, ok := s.storedSecretHeader(old, canon)
			if !ok {
				errs.add(ptr, "a secret header needs a value (an empty one keeps the stored value, and there is none)")
				continue
			}
			secret[name] = kept
			continue
		}
		secret[name] = subscription.SecretHeader{Sealed: s.keys.Seal(v), Hint: subscription.HeaderHint(v)}
	}
	sub.Headers, sub.SecretHeaders = plain, secret
	if len(plain) == 0 {
		sub.Headers = nil
	}
	if len(secret) == 0 {
		sub.SecretHeaders = nil
	}
}

// storedSecretHeader finds canon's stored value among sub's secret
// headers, or among its plain ones (a credential-named header stored in
// plain text before such headers were sealed: it is sealed now).
func (s *Service) storedSecretHeader(sub subscription.Subscription, canon string) (subscription.SecretHeader, bool) {
	for k, h := range sub.SecretHeaders {
		if http.CanonicalHeaderKey(k) == canon {
			return h, true
		}
	}
	for k, v := range sub.Headers {
		if http.CanonicalHeaderKey(k) == canon {
			return subscription.SecretHeader{Sealed: s.keys.Seal(v), Hint: subscription.HeaderHint(v)}, true
		}
	}
	return subscription.SecretHeader{}, false
}

// sealHeaders seals credential-named headers still stored in plain text
// and reseals secret headers made under an older operator key; store runs
// it on every write, so old records are mended when next changed.
func (s *Service) sealHeaders(sub *subscription.Subscription) {
	for k, v := range sub.Headers {
		if !subscription.IsSecretHeader(k) {
			continue
		}
		if sub.SecretHeaders == nil {
			sub.SecretHeaders = map[string]subscription.SecretHeader{}
		}
		sub.SecretHeaders[k] = subscription.SecretHeader{Sealed: s.keys.Seal(v), Hint: subscription.HeaderHint(v)}
		delete(sub.Headers, k)
	}
	if len(sub.Headers) == 0 {
		sub.Headers = nil
	}
	for k, h := range sub.SecretHeaders {
		if !s.keys.NeedsReseal(h.Sealed) {
			continue
		}
		if p, err := s.keys.Open(h.Sealed); err == nil {
			h.Sealed = s.keys.Seal(p)
			sub.SecretHeaders[k] = h
		}
	}
}

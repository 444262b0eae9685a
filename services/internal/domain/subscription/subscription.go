// Package subscription declares the subscription record that the registry
// stores in the "subscriptions" bucket (key "<tenant>.<id>") and the
// dispatcher watches. Every secret in it is sealed with secretbox; the
// plaintext exists only in the registry's create/rotate answer and in the
// dispatcher's memory while it signs.
package subscription

import (
	"encoding/json"
	"strings"
	"time"
)

// Payload modes.
const (
	PayloadStructured = "structured" // application/cloudevents+json body
	PayloadBinary     = "binary"     // ce- headers, data as body
	PayloadTemplate   = "template"   // tenant's body template
)

// Retry policies.
const (
	RetryDefault = "default" // the full schedule
	RetrySingle  = "single"  // exactly one attempt
)

// Status values.
const (
	StatusEnabled  = "enabled"
	StatusPaused   = "paused"
	StatusDisabled = "disabled" // by Herald: 410 Gone or failing too long
)

// Auth types besides the always-on signature.
const (
	AuthNone   = "none"
	AuthBasic  = "basic"
	AuthBearer = "bearer"
)

// Subscription is one endpoint and what it wants.
type Subscription struct {
	ID                 string   `json:"id"`
	Tenant             string   `json:"tenant"`
	URL                string   `json:"url"`
	Events             []string `json:"events"`
	Filter             string   `json:"filter,omitempty"`
	IncludeSubaccounts bool     `json:"include_subaccounts,omitempty"`
	Auth               Auth     `json:"auth"`
	// Headers are custom headers sent in plain text; SecretHeaders are
	// those marked secret or named like credentials (IsSecretHeader),
	// sealed. A name is in at most one of the two.
	Headers       map[string]string       `json:"headers,omitempty"`
	SecretHeaders map[string]SecretHeader `json:"secret_headers,omitempty"`
	PayloadMode   string                  `json:"payload_mode"`
	Template      string                  `json:"template,omitempty"`
	RetryPolicy   string                  `json:"retry_policy"`
	RateLimit     float64                 `json:"rate_limit,omitempty"`
	Status        string                  `json:"status"`
	StatusReason  string                  `json:"status_reason,omitempty"`
	Description   string                  `json:"description,omitempty"`
	Metadata      map[string]string       `json:"metadata,omitempty"`
	// PropagateTrace sends traceparent to the endpoint; off by default so
	// internal trace ids do not leak.
	PropagateTrace bool `json:"propagate_trace,omitempty"`
	// OperatorAllowed lets the URL reach the operator's allow-listed
	// non-global ranges (HERALD_REGISTRY_ALLOW_CIDRS and
	// HERALD_DISPATCHER_ALLOW_CIDRS, loopback on the embedded default).
	// The registry sets it only when the URL needs the allow-list and was
	// written by the operator, or by a tenant the operator enabled
	// (tenancy.Settings.AllowPrivateDestinations). Without it the
	// dispatcher and the test call dial global addresses only.
	OperatorAllowed bool `json:"operator_allowed,omitempty"`
	// Handshake makes the registry run the CloudEvents abuse-protection
	// handshake (OPTIONS) before accepting the URL.
	Handshake bool      `json:"handshake,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Outbox is the registry's CHANGES record of the write that stored this
	// version, until it is published; readers ignore it.
	Outbox json.RawMessage `json:"outbox,omitempty"`
}

// Auth holds how requests are signed and authenticated. Fields ending in
// Sealed are secretbox values.
type Auth struct {
	// Secrets are the HMAC signing secrets ("whsec_..." sealed). The first
	// is current; others are sent too until their ExpiresAt (rotation).
	Secrets []Secret `json:"secrets"`
	// Ed25519 signing (v1a): the sealed "whsk_" key and its public key.
	Ed25519KeySealed string `json:"ed25519_key_sealed,omitempty"`
	Ed25519Public    string `json:"ed25519_public,omitempty"`
	// Type is none, basic or bearer.
	Type           string `json:"type"`
	Username       string `json:"username,omitempty"`
	PasswordSealed string `json:"password_sealed,omitempty"`
	TokenSealed    string `json:"token_sealed,omitempty"`
	// mTLS client certificate (PEM), its sealed key, and an optional CA to
	// trust for the endpoint.
	ClientCertPEM   string `json:"client_cert_pem,omitempty"`
	ClientKeySealed string `json:"client_key_sealed,omitempty"`
	CACertPEM       string `json:"ca_cert_pem,omitempty"`
}

// Secret is one HMAC secret.
type Secret struct {
	ID        string     `json:"id"`
	Sealed    string     `json:"sealed"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// ActiveSecrets returns the secrets still valid at now, current first.
func (a Auth) ActiveSecrets(now time.Time) []Secret {
	out := make([]Secret, 0, len(a.Secrets))
	for _, s := range a.Secrets {
		if s.ExpiresAt == nil || now.Before(*s.ExpiresAt) {
			out = append(out, s)
		}
	}
	return out
}

// Key is the subscription's key in the subscriptions bucket.
func Key(tenant, id string) string { return tenant + "." + id }

// MatchesType reports whether eventType is one of the subscription's event
// patterns: an exact type, "*" for every type, or "prefix.*" for every type
// under prefix (e.g. "alert.*" matches "alert.opened").
func (s *Subscription) MatchesType(eventType string) bool {
	for _, p := range s.Events {
		if MatchPattern(p, eventType) {
			return true
		}
	}
	return false
}

// MatchPattern is the event-pattern rule of MatchesType.
func MatchPattern(pattern, eventType string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, ".*"):
		return strings.HasPrefix(eventType, pattern[:len(pattern)-1])
	default:
		return pattern == eventType
	}
}

// Active reports whether the subscription should receive deliveries.
func (s *Subscription) Active() bool { return s.Status == StatusEnabled }

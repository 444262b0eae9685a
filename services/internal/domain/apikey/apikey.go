// Package apikey is the format of tenant API keys. A key looks like
// "hk_<key id>_<secret>" and is shown once, at creation; what is kept is a
// Record with only the SHA-256 of the secret, keyed by key id, with the
// tenant it belongs to. A key acts for its own tenant and the tenants below
// it in the hierarchy.
//
// The package holds no storage: the collector keeps the records in the
// api-keys KV bucket (services/collector/keystore.go) and every service's
// API checks keys against that bucket (services/internal/service).
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// Prefix starts every key, so that authenticators can tell keys from other
// bearer tokens without a lookup.
const Prefix = "hk_"

// ErrNotFound means no such key for the tenant.
var ErrNotFound = errors.New("apikey: not found")

// ErrMalformed means a string is not an API key.
var ErrMalformed = errors.New("apikey: malformed key")

// Record is a stored key. Hash is the hex SHA-256 of the secret; it never
// leaves the service.
type Record struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Name      string    `json:"name,omitempty"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// New makes a key for tenant: the record to store and the full key, which
// is not kept anywhere. The caller validates tenant.
func New(tenant, name, actor string) (Record, string) {
	id, secret := randomHex(8), randomHex(32)
	sum := sha256.Sum256([]byte(secret))
	rec := Record{ID: id, Tenant: tenant, Name: name, Hash: hex.EncodeToString(sum[:]), CreatedAt: time.Now().UTC(), CreatedBy: actor}
	return rec, Prefix + id + "_" + secret
}

// Matches reports, in constant time, whether secret is the one rec was
// made with.
func (rec Record) Matches(secret string) bool {
	sum := sha256.Sum256([]byte(secret))
	want, err := hex.DecodeString(rec.Hash)
	return err == nil && subtle.ConstantTimeCompare(sum[:], want) == 1
}

// ValidID reports whether id has the form of a key id, so that a lookup
// can refuse anything else without a read.
func ValidID(id string) bool { return isHex(id, 16) }

// Parse splits "hk_<id>_<secret>".
func Parse(key string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(key, Prefix)
	if !ok {
		return "", "", ErrMalformed
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || !isHex(id, 16) || !isHex(secret, 64) {
		return "", "", ErrMalformed
	}
	return id, secret, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

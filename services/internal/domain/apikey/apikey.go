// Package apikey issues, lists, revokes and checks tenant API keys. A key
// looks like "hk_<key id>_<secret>" and is shown once, at creation; the KV
// bucket "api-keys" stores only the SHA-256 of the secret, keyed by key id,
// with the tenant it belongs to. A key acts for its own tenant and the
// tenants below it in the hierarchy.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/transport/contract"
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

// Store keeps keys in the api-keys bucket.
type Store struct{ kv jetstream.KeyValue }

// NewStore returns a store on the api-keys bucket.
func NewStore(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// Create issues a key for tenant and returns its record and the full key,
// which is not kept anywhere.
func (s *Store) Create(ctx context.Context, tenant, name, actor string) (Record, string, error) {
	if err := contract.ValidateToken(tenant); err != nil {
		return Record{}, "", err
	}
	id, secret := randomHex(8), randomHex(32)
	sum := sha256.Sum256([]byte(secret))
	rec := Record{ID: id, Tenant: tenant, Name: name, Hash: hex.EncodeToString(sum[:]), CreatedAt: time.Now().UTC(), CreatedBy: actor}
	b, err := json.Marshal(rec)
	if err != nil {
		return Record{}, "", err
	}
	if _, err := s.kv.Create(ctx, id, b); err != nil {
		return Record{}, "", fmt.Errorf("apikey: store %s: %w", id, err)
	}
	return rec, Prefix + id + "_" + secret, nil
}

// Get returns the key id of tenant, or ErrNotFound.
func (s *Store) Get(ctx context.Context, tenant, id string) (Record, error) {
	rec, err := s.get(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if rec.Tenant != tenant {
		return Record{}, ErrNotFound
	}
	return rec, nil
}

func (s *Store) get(ctx context.Context, id string) (Record, error) {
	if !isHex(id, 16) {
		return Record{}, ErrNotFound
	}
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("apikey: read %s: %w", id, err)
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Record{}, fmt.Errorf("apikey: decode %s: %w", id, err)
	}
	return rec, nil
}

// List returns tenant's keys, oldest first. It scans the bucket: keys are
// few and listing is rare, while checking a key must be one Get by id.
func (s *Store) List(ctx context.Context, tenant string) ([]Record, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("apikey: list: %w", err)
	}
	defer lister.Stop()
	out := []Record{}
	for id := range lister.Keys() {
		rec, err := s.get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // revoked meanwhile
		}
		if err != nil {
			return nil, err
		}
		if rec.Tenant == tenant {
			out = append(out, rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Revoke deletes tenant's key id; it returns ErrNotFound if there is none.
func (s *Store) Revoke(ctx context.Context, tenant, id string) error {
	if _, err := s.Get(ctx, tenant, id); err != nil {
		return err
	}
	if err := s.kv.Delete(ctx, id); err != nil {
		return fmt.Errorf("apikey: revoke %s: %w", id, err)
	}
	return nil
}

// Check returns the record of a full key if the key is valid. It returns
// ErrMalformed or ErrNotFound (also for a wrong secret).
func (s *Store) Check(ctx context.Context, key string) (Record, error) {
	id, secret, err := Parse(key)
	if err != nil {
		return Record{}, err
	}
	rec, err := s.get(ctx, id)
	if err != nil {
		return Record{}, err
	}
	sum := sha256.Sum256([]byte(secret))
	want, err := hex.DecodeString(rec.Hash)
	if err != nil || subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return Record{}, ErrNotFound
	}
	return rec, nil
}

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

// Authenticator checks "Authorization: Bearer hk_..." against the api-keys
// bucket, which it opens on first use (the collector owns it). Other bearer
// tokens yield apiauth.ErrNoCredentials. It is safe for concurrent use.
type Authenticator struct {
	js    jetstream.KeyValueManager
	mu    sync.Mutex
	store *Store
	tree  *tree
}

// NewAuthenticator returns an authenticator over js's api-keys bucket. Its
// principals carry the tenants bucket as their apiauth.Hierarchy, so a key
// may also act for the tenants below its own.
func NewAuthenticator(js jetstream.JetStream) apiauth.Authenticator {
	return &Authenticator{js: js, tree: &tree{js: js}}
}

// lookupTimeout bounds one key check so that a NATS outage fails the request
// instead of hanging it.
const lookupTimeout = 5 * time.Second

// Authenticate implements apiauth.Authenticator.
func (a *Authenticator) Authenticate(r *http.Request) (apiauth.Principal, error) {
	tok, ok := apiauth.BearerToken(r)
	if !ok || !strings.HasPrefix(tok, Prefix) {
		return apiauth.Principal{}, apiauth.ErrNoCredentials
	}
	ctx, cancel := context.WithTimeout(r.Context(), lookupTimeout)
	defer cancel()
	st, err := a.open(ctx)
	if err != nil {
		return apiauth.Principal{}, fmt.Errorf("%w: %v", apiauth.ErrBadCredentials, err)
	}
	rec, err := st.Check(ctx, tok)
	if err != nil {
		return apiauth.Principal{}, fmt.Errorf("%w: %v", apiauth.ErrBadCredentials, err)
	}
	return apiauth.Principal{Actor: "apikey:" + rec.Tenant + "/" + rec.ID, Tenant: rec.Tenant, Tree: a.tree}, nil
}

func (a *Authenticator) open(ctx context.Context) (*Store, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.store != nil {
		return a.store, nil
	}
	kv, err := a.js.KeyValue(ctx, contract.BucketAPIKeys)
	if err != nil {
		return nil, err
	}
	a.store = NewStore(kv)
	return a.store, nil
}

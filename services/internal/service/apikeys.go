package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/apikey"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// The api-keys bucket holds one apikey.Record per key, as JSON under its key
// id. The collector owns the bucket and writes it (its keystore); every
// service's API reads it to authenticate keys. Both go through
// ReadAPIKey (DecodeAPIKey) and CreateAPIKey, so the stored form is
// defined once.

// ReadAPIKey returns the record of key id from the api-keys bucket kv, or
// apikey.ErrNotFound (also for a string that is not a key id).
func ReadAPIKey(ctx context.Context, kv jetstream.KeyValue, id string) (apikey.Record, error) {
	if !apikey.ValidID(id) {
		return apikey.Record{}, apikey.ErrNotFound
	}
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return apikey.Record{}, apikey.ErrNotFound
	}
	if err != nil {
		return apikey.Record{}, fmt.Errorf("apikey: read %s: %w", id, err)
	}
	return DecodeAPIKey(id, e.Value())
}

// DecodeAPIKey decodes the stored record of key id.
func DecodeAPIKey(id string, b []byte) (apikey.Record, error) {
	var rec apikey.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return apikey.Record{}, fmt.Errorf("apikey: decode %s: %w", id, err)
	}
	return rec, nil
}

// CreateAPIKey stores rec in the api-keys bucket kv under its id; it fails
// if the id is taken.
func CreateAPIKey(ctx context.Context, kv jetstream.KeyValue, rec apikey.Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := kv.Create(ctx, rec.ID, b); err != nil {
		return fmt.Errorf("apikey: store %s: %w", rec.ID, err)
	}
	return nil
}

// CheckAPIKey returns the record of a full key if the key is valid: one
// Get by key id and a constant-time compare of the secret's hash. It
// returns apikey.ErrMalformed or apikey.ErrNotFound (also for a wrong
// secret).
func CheckAPIKey(ctx context.Context, kv jetstream.KeyValue, key string) (apikey.Record, error) {
	id, secret, err := apikey.Parse(key)
	if err != nil {
		return apikey.Record{}, err
	}
	rec, err := ReadAPIKey(ctx, kv, id)
	if err != nil {
		return apikey.Record{}, err
	}
	if !rec.Matches(secret) {
		return apikey.Record{}, apikey.ErrNotFound
	}
	return rec, nil
}

// keyAuthenticator checks "Authorization: Bearer hk_..." against the
// api-keys bucket, which it opens on first use (the collector owns it).
// Other bearer tokens yield apiauth.ErrNoCredentials. It is safe for
// concurrent use.
type keyAuthenticator struct {
	js   jetstream.KeyValueManager
	mu   sync.Mutex
	kv   jetstream.KeyValue
	tree *tree
}

// NewKeyAuthenticator returns an authenticator over js's api-keys bucket.
// Its principals carry the tenants bucket as their apiauth.Hierarchy, so a
// key may also act for the tenants below its own.
func NewKeyAuthenticator(js jetstream.JetStream) apiauth.Authenticator {
	return &keyAuthenticator{js: js, tree: &tree{js: js}}
}

// lookupTimeout bounds one key check so that a NATS outage fails the request
// instead of hanging it.
const lookupTimeout = 5 * time.Second

// Authenticate implements apiauth.Authenticator.
func (a *keyAuthenticator) Authenticate(r *http.Request) (apiauth.Principal, error) {
	tok, ok := apiauth.BearerToken(r)
	if !ok || !strings.HasPrefix(tok, apikey.Prefix) {
		return apiauth.Principal{}, apiauth.ErrNoCredentials
	}
	ctx, cancel := context.WithTimeout(r.Context(), lookupTimeout)
	defer cancel()
	kv, err := a.open(ctx)
	if err != nil {
		return apiauth.Principal{}, fmt.Errorf("%w: %v", apiauth.ErrBadCredentials, err)
	}
	rec, err := CheckAPIKey(ctx, kv, tok)
	if err != nil {
		return apiauth.Principal{}, fmt.Errorf("%w: %v", apiauth.ErrBadCredentials, err)
	}
	return apiauth.Principal{Actor: "apikey:" + rec.Tenant + "/" + rec.ID, Tenant: rec.Tenant, Tree: a.tree}, nil
}

func (a *keyAuthenticator) open(ctx context.Context) (jetstream.KeyValue, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.kv != nil {
		return a.kv, nil
	}
	kv, err := a.js.KeyValue(ctx, contract.BucketAPIKeys)
	if err != nil {
		return nil, err
	}
	a.kv = kv
	return kv, nil
}

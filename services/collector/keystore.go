package collector

import (
	"context"
	"fmt"
	"sort"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/apikey"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// keyStore issues, lists and revokes tenant API keys in the api-keys
// bucket, which the collector owns. The record format is package apikey's;
// the stored form and the read-side check are service.ReadAPIKey,
// service.CreateAPIKey and service.CheckAPIKey, which every service's API
// uses to authenticate keys.
type keyStore struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
}

// newKeyStore returns a store on the api-keys bucket.
func newKeyStore(js jetstream.JetStream, kv jetstream.KeyValue) *keyStore {
	return &keyStore{js: js, kv: kv}
}

// Create issues a key for tenant and returns its record and the full key,
// which is not kept anywhere.
func (s *keyStore) Create(ctx context.Context, tenant, name, actor string) (apikey.Record, string, error) {
	if err := contract.ValidateToken(tenant); err != nil {
		return apikey.Record{}, "", err
	}
	rec, key := apikey.New(tenant, name, actor)
	if err := service.CreateAPIKey(ctx, s.kv, rec); err != nil {
		return apikey.Record{}, "", err
	}
	return rec, key, nil
}

// Get returns the key id of tenant, or apikey.ErrNotFound.
func (s *keyStore) Get(ctx context.Context, tenant, id string) (apikey.Record, error) {
	rec, err := service.ReadAPIKey(ctx, s.kv, id)
	if err != nil {
		return apikey.Record{}, err
	}
	if rec.Tenant != tenant {
		return apikey.Record{}, apikey.ErrNotFound
	}
	return rec, nil
}

// List returns tenant's keys, oldest first. It reads the whole bucket in
// one snapshot: keys are few and listing is rare, while checking a key must
// be one Get by id.
func (s *keyStore) List(ctx context.Context, tenant string) ([]apikey.Record, error) {
	entries, err := bus.ListEntries(ctx, s.js, s.kv.Bucket(), "")
	if err != nil {
		return nil, fmt.Errorf("apikey: list: %w", err)
	}
	out := []apikey.Record{}
	for _, e := range entries {
		rec, err := service.DecodeAPIKey(e.Key, e.Value)
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

// Revoke deletes tenant's key id; it returns apikey.ErrNotFound if there is
// none.
func (s *keyStore) Revoke(ctx context.Context, tenant, id string) error {
	if _, err := s.Get(ctx, tenant, id); err != nil {
		return err
	}
	if err := s.kv.Delete(ctx, id); err != nil {
		return fmt.Errorf("apikey: revoke %s: %w", id, err)
	}
	return nil
}

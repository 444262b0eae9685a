package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// tree is the apiauth.Hierarchy that key principals carry: the tenants
// bucket (written by the registry), opened on first use. Each Parent is one
// KV read, and only a key acting below its own tenant needs any.
type tree struct {
	js jetstream.KeyValueManager
	mu sync.Mutex
	kv jetstream.KeyValue
}

// Parent implements apiauth.Hierarchy.
func (t *tree) Parent(ctx context.Context, tenant string) (string, error) {
	if contract.ValidateToken(tenant) != nil {
		return "", apiauth.ErrUnknownTenant
	}
	kv, err := t.open(ctx)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return "", apiauth.ErrUnknownTenant
	}
	if err != nil {
		return "", err
	}
	e, err := kv.Get(ctx, tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", apiauth.ErrUnknownTenant
	}
	if err != nil {
		return "", fmt.Errorf("apikey: read tenant %s: %w", tenant, err)
	}
	var rec struct {
		Parent string `json:"parent"`
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return "", fmt.Errorf("apikey: decode tenant %s: %w", tenant, err)
	}
	return rec.Parent, nil
}

func (t *tree) open(ctx context.Context) (jetstream.KeyValue, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.kv != nil {
		return t.kv, nil
	}
	kv, err := t.js.KeyValue(ctx, contract.BucketTenants)
	if err != nil {
		return nil, err
	}
	t.kv = kv
	return kv, nil
}

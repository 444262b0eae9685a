package service

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/apikey"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// TestKeyAuthenticator: the read side alone, over records written with
// CreateAPIKey (as the collector's store does): a key is accepted with its
// own secret only, for its own tenant, and refused once its record is gone.
func TestKeyAuthenticator(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	ctx := context.Background()
	auth := NewKeyAuthenticator(ns.JS)
	req := func(tok string) *http.Request {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	rec, key := apikey.New("acme", "ci", "admin")
	// Before the bucket exists a key is refused, not a panic or a hang.
	if _, err := auth.Authenticate(req(key)); !errors.Is(err, apiauth.ErrBadCredentials) {
		t.Errorf("no bucket: %v", err)
	}
	kv, err := bus.EnsureBucket(ctx, ns.JS, contract.Bucket(contract.BucketAPIKeys, contract.DefaultTopology))
	if err != nil {
		t.Fatal(err)
	}
	if err := CreateAPIKey(ctx, kv, rec); err != nil {
		t.Fatal(err)
	}
	if err := CreateAPIKey(ctx, kv, rec); err == nil {
		t.Error("a second record under the same id was stored")
	}
	if got, err := ReadAPIKey(ctx, kv, rec.ID); err != nil || got != rec {
		t.Errorf("ReadAPIKey = %+v, %v; want %+v", got, err, rec)
	}
	if _, err := ReadAPIKey(ctx, kv, "../"+rec.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("ReadAPIKey of a non-id: %v", err)
	}
	p, err := auth.Authenticate(req(key))
	if err != nil || p.Tenant != "acme" || p.Actor != "apikey:acme/"+rec.ID || p.Admin || p.CanAccess("beta") {
		t.Fatalf("principal %+v, %v", p, err)
	}
	wrong := key[:len(key)-64] + strings.Repeat("0", 64)
	if _, err := CheckAPIKey(ctx, kv, wrong); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := auth.Authenticate(req(wrong)); !errors.Is(err, apiauth.ErrBadCredentials) {
		t.Errorf("wrong secret authenticated: %v", err)
	}
	if _, err := CheckAPIKey(ctx, kv, "hk_nope"); !errors.Is(err, apikey.ErrMalformed) {
		t.Errorf("malformed key: %v", err)
	}
	if _, err := auth.Authenticate(req("some-admin-token")); !errors.Is(err, apiauth.ErrNoCredentials) {
		t.Errorf("non-key token: %v", err)
	}
	if err := kv.Delete(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(req(key)); !errors.Is(err, apiauth.ErrBadCredentials) {
		t.Errorf("deleted key: %v", err)
	}
}

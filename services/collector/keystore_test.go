package collector

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/apikey"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// TestKeyLifecycle: the collector's store issues, lists and revokes keys
// that the services' key authenticator accepts until they are revoked.
func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	ctx := context.Background()
	auth := service.NewKeyAuthenticator(ns.JS)
	req := func(tok string) *http.Request {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	// Before the bucket exists a key is refused, not a panic or a hang.
	if _, err := auth.Authenticate(req(apikey.Prefix + strings.Repeat("a", 16) + "_" + strings.Repeat("b", 64))); !errors.Is(err, apiauth.ErrBadCredentials) {
		t.Errorf("no bucket: %v", err)
	}
	kv, err := bus.EnsureBucket(ctx, ns.JS, contract.Bucket(contract.BucketAPIKeys, contract.DefaultTopology))
	if err != nil {
		t.Fatal(err)
	}
	st := newKeyStore(ns.JS, kv)
	rec, key, err := st.Create(ctx, "acme", "ci", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Create(ctx, "Not A Token", "", "admin"); err == nil {
		t.Error("created a key for an invalid tenant id")
	}
	e, _ := kv.Get(ctx, rec.ID)
	if strings.Contains(string(e.Value()), strings.SplitN(key, "_", 3)[2]) {
		t.Error("the secret is stored in clear")
	}
	p, err := auth.Authenticate(req(key))
	if err != nil || p.Tenant != "acme" || p.Actor != "apikey:acme/"+rec.ID || p.Admin || p.CanAccess("beta") {
		t.Fatalf("principal %+v, %v", p, err)
	}
	if _, err := auth.Authenticate(req("some-admin-token")); !errors.Is(err, apiauth.ErrNoCredentials) {
		t.Errorf("non-key token: %v", err)
	}
	if l, _ := st.List(ctx, "beta"); len(l) != 0 {
		t.Errorf("beta lists %v", l)
	}
	if l, _ := st.List(ctx, "acme"); len(l) != 1 || l[0].ID != rec.ID {
		t.Errorf("acme lists %v", l)
	}
	if err := st.Revoke(ctx, "beta", rec.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("revoke by another tenant: %v", err)
	}
	if err := st.Revoke(ctx, "acme", rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(req(key)); !errors.Is(err, apiauth.ErrBadCredentials) {
		t.Errorf("revoked key: %v", err)
	}
}

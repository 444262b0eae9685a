package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/domain/tenancy"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// changeIDs counts the CHANGES records by CloudEvent id.
func changeIDs(t *testing.T, h *harness) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range h.changes(context.Background()) {
		e, err := cenats.Decode(m.Headers(), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		out[e.ID()]++
	}
	return out
}

// outboxID is the CloudEvent id of the change in an outbox.
func outboxID(t *testing.T, raw []byte) string {
	t.Helper()
	var ob outbox
	if err := json.Unmarshal(raw, &ob); err != nil {
		t.Fatal(err)
	}
	var e struct{ ID string }
	if err := json.Unmarshal(ob.Event, &e); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// crashAfterWrite stores rec with its change the way a request does and
// stops there, as a registry that died between its KV write and the
// CHANGES publish would. It returns the change's id.
func crashAfterWrite(t *testing.T, kv jetstream.KeyValue, key string, rev uint64, rec any, change json.RawMessage) string {
	t.Helper()
	raw, err := withOutbox(rec, change)
	if err != nil {
		t.Fatal(err)
	}
	if rev == 0 {
		_, err = kv.Create(context.Background(), key, raw)
	} else {
		_, err = kv.Update(context.Background(), key, raw, rev)
	}
	if err != nil {
		t.Fatal(err)
	}
	return outboxID(t, change)
}

// TestChangesSurviveACrashBetweenWriteAndPublish: changes whose request
// stopped after the KV write (a create, an update, a delete) are published
// by the sweeper, once each, and the records settle.
func TestChangesSurviveACrashBetweenWriteAndPublish(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.OutboxSweep = 200 * time.Millisecond })
	ctx := context.Background()
	h.tenant("acme", "account", "")
	a := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": "http://127.0.0.1:9/d", "events": []string{"alert.*"}}, http.StatusCreated)
	doomed := a.body["id"].(string)
	normal := changeIDs(t, h)
	if len(normal) != 2 {
		t.Fatalf("CHANGES after a create each: %v", normal)
	}

	// A created subscription, a renamed tenant, a deleted subscription.
	now := time.Now().UTC()
	sub := subscription.Subscription{ID: "sub_crashed", Tenant: "acme", URL: "http://127.0.0.1:9/c", Events: []string{"alert.*"},
		PayloadMode: subscription.PayloadStructured, RetryPolicy: subscription.RetryDefault, Status: subscription.StatusEnabled,
		Auth: subscription.Auth{Type: subscription.AuthNone}, CreatedAt: now, UpdatedAt: now}
	created := crashAfterWrite(t, h.svc.subKV(), subscription.Key("acme", sub.ID), 0, sub,
		h.svc.newChange(ctx, "acme", "subscription", sub.ID, "created", nil, viewSub(sub)))
	ten, rev, err := h.svc.loadTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	before := viewTenant(ten)
	ten.Name = "Acme Renamed"
	renamed := crashAfterWrite(t, h.svc.tenantKV(), "acme", rev, ten, h.svc.newChange(ctx, "acme", "tenant", "acme", "updated", before, viewTenant(ten)))
	ds, drev, err := h.svc.loadSub(ctx, "acme", doomed)
	if err != nil {
		t.Fatal(err)
	}
	deleted := crashAfterWrite(t, h.svc.subKV(), subscription.Key("acme", doomed), drev, ds,
		h.svc.newChange(ctx, "acme", "subscription", doomed, "deleted", viewSub(ds), nil))
	// The pending deletion is already a deletion for the API.
	h.admin("GET", "/v1/tenants/acme/subscriptions/"+doomed, nil, http.StatusNotFound)

	natstest.Eventually(t, 20*time.Second, func() error {
		ids := changeIDs(t, h)
		for _, id := range []string{created, renamed, deleted} {
			if ids[id] != 1 {
				return fmt.Errorf("change %s recorded %d times", id, ids[id])
			}
		}
		if _, err := h.svc.subKV().Get(ctx, subscription.Key("acme", doomed)); err == nil {
			return fmt.Errorf("the deleted subscription is still stored")
		}
		for _, k := range []struct {
			kv  jetstream.KeyValue
			key string
		}{{h.svc.subKV(), subscription.Key("acme", sub.ID)}, {h.svc.tenantKV(), "acme"}} {
			e, err := k.kv.Get(ctx, k.key)
			if err != nil {
				return err
			}
			var rec struct{ Outbox json.RawMessage }
			_ = json.Unmarshal(e.Value(), &rec)
			if len(rec.Outbox) > 0 {
				return fmt.Errorf("%s still holds its change", k.key)
			}
		}
		return nil
	})
	// Every outbox is settled, so nothing more can be published: each
	// change is in CHANGES once, the two normal ones included.
	ids := changeIDs(t, h)
	for id, n := range ids {
		if n != 1 {
			t.Errorf("change %s recorded %d times", id, n)
		}
	}
	if len(ids) != 5 {
		t.Errorf("%d changes recorded, want 5: %v", len(ids), ids)
	}
	h.admin("GET", "/v1/tenants/acme/subscriptions/sub_crashed", nil, http.StatusOK)
	if a := h.admin("GET", "/v1/tenants/acme", nil, http.StatusOK); a.body["name"] != "Acme Renamed" {
		t.Errorf("tenant after the sweep: %s", a.raw)
	}
}

// TestWriteFlushesALeftoverChange: a write to a record whose change was
// never published publishes that change first instead of overwriting it.
func TestWriteFlushesALeftoverChange(t *testing.T) {
	t.Parallel()
	// The sweeper only takes changes older than 5 minutes: the write must
	// do it.
	h := newHarness(t, func(c *Config) { c.OutboxSweep = 5 * time.Minute })
	ctx := context.Background()
	h.tenant("acme", "account", "")
	ten, rev, err := h.svc.loadTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	before := viewTenant(ten)
	ten.Name = "Half Renamed"
	lost := crashAfterWrite(t, h.svc.tenantKV(), "acme", rev, ten, h.svc.newChange(ctx, "acme", "tenant", "acme", "updated", before, viewTenant(ten)))

	h.admin("PATCH", "/v1/tenants/acme", map[string]any{"name": "Acme Final"}, http.StatusOK)
	ids := changeIDs(t, h)
	if ids[lost] != 1 || len(ids) != 3 {
		t.Errorf("changes %v: want the create, the crashed rename %s and the PATCH, once each", ids, lost)
	}
	e, err := h.svc.tenantKV().Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var rec tenancy.Tenant
	if err := json.Unmarshal(e.Value(), &rec); err != nil || len(rec.Outbox) != 0 || rec.Name != "Acme Final" {
		t.Errorf("tenant record after the PATCH: %s", e.Value())
	}
}

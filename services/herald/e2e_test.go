package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// receiver is a real HTTP endpoint that records what it is sent.
type receiver struct {
	mu   sync.Mutex
	reqs []received
	srv  *httptest.Server
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{req.Header.Clone(), b})
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// startHerald runs the embedded default in-process on free ports and a temp
// data dir, and stops it when the test ends.
func startHerald(t *testing.T) started {
	t.Helper()
	return startHeraldWith(t, nil)
}

// startHeraldWith is startHerald with mutate applied to the config.
func startHeraldWith(t *testing.T, mutate func(*Config)) started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(), NATSHost: "127.0.0.1", NATSPort: -1, AdminToken: "test-admin-token-0123456789"}
	if mutate != nil {
		mutate(&cfg)
	}
	startedc := make(chan started, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	var logMu sync.Mutex
	go func() {
		done <- runEmbedded(ctx, cfg, func(string) string { return "" }, lockedWriter{&logMu, &logs}, func(s started) { startedc <- s })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("herald exited with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("herald did not stop within 30s")
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("herald logs:\n%s", logs.String())
			logMu.Unlock()
		}
	})
	select {
	case s := <-startedc:
		natstest.Eventually(t, 30*time.Second, func() error {
			resp, err := http.Get(s.HTTPURL + "/readyz")
			if err != nil {
				return err
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("readyz %d: %s", resp.StatusCode, b)
			}
			return nil
		})
		return s
	case err := <-done:
		t.Fatalf("herald failed to start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("herald did not start within 60s")
	}
	return started{}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func call(t *testing.T, h started, method, path, contentType string, body any, want int) map[string]any {
	t.Helper()
	var rdr io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rdr = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rdr = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, h.HTTPURL+path, rdr)
	req.Header.Set("Authorization", "Bearer "+h.AdminToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	out := map[string]any{}
	_ = json.Unmarshal(raw, &out)
	return out
}

func TestEventToSignedWebhook(t *testing.T) {
	h := startHerald(t)
	rcv := newReceiver(t)

	call(t, h, "POST", "/v1/tenants", "application/json", map[string]any{"id": "acme", "name": "Acme", "kind": "account"}, http.StatusCreated)
	sub := call(t, h, "POST", "/v1/tenants/acme/subscriptions", "application/json",
		map[string]any{"url": rcv.srv.URL + "/hook", "events": []string{"server.rebooted"}}, http.StatusCreated)
	secret, _ := sub["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("create subscription returned no whsec_ secret: %v", sub)
	}

	event := `{"specversion":"1.0","id":"evt-42","source":"urn:fleet:rtr","type":"server.rebooted","subject":"RTR-42","datacontenttype":"application/json","data":{"router_id":"RTR-42","reason":"Initiated by user"}}`
	call(t, h, "POST", "/v1/tenants/acme/events", "application/cloudevents+json", event, http.StatusAccepted)

	natstest.Eventually(t, 30*time.Second, func() error {
		if n := len(rcv.all()); n < 1 {
			return fmt.Errorf("receiver got %d requests", n)
		}
		return nil
	})
	got := rcv.all()[0]
	v, err := webhook.NewVerifier([]string{secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(got.header, got.body); err != nil {
		t.Fatalf("signature does not verify: %v (headers %v)", err, got.header)
	}
	var ce map[string]any
	if err := json.Unmarshal(got.body, &ce); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, got.body)
	}
	if ce["type"] != "server.rebooted" || ce["specversion"] != "1.0" || ce["subject"] != "RTR-42" {
		t.Errorf("delivered CloudEvent attributes: %v", ce)
	}
	data, _ := ce["data"].(map[string]any)
	if data["router_id"] != "RTR-42" || data["reason"] != "Initiated by user" {
		t.Errorf("delivered data = %v", ce["data"])
	}
	if ct := got.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cloudevents+json") {
		t.Errorf("content-type %q", ct)
	}

	// A redelivered DELIVERIES message for the same pair (a new message, as
	// after a crash between POST and ack) must not cause a second POST.
	redeliver(t, h, "acme", sub["id"].(string), ce, got.body)

	// The same event again is deduplicated at ingest: no second webhook.
	call(t, h, "POST", "/v1/tenants/acme/events", "application/cloudevents+json", event, http.StatusAccepted)
	// And the attempt is queryable.
	natstest.Eventually(t, 30*time.Second, func() error {
		req, _ := http.NewRequest("GET", h.HTTPURL+"/v1/tenants/acme/deliveries", nil)
		req.Header.Set("Authorization", "Bearer "+h.AdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`204`)) {
			return fmt.Errorf("deliveries %d: %s", resp.StatusCode, b)
		}
		return nil
	})
	if n := len(rcv.all()); n != 1 {
		t.Errorf("receiver got %d requests, want exactly 1", n)
	}
}

func redeliver(t *testing.T, h started, tenant, subID string, ce map[string]any, notification []byte) {
	t.Helper()
	ctx := context.Background()
	_, js := natstest.Connect(t, h.NATSURL)
	// A redelivery comes after AckWait, when the first delivery's record
	// has long been written (it is written with the outcome, not waited
	// for): wait for it as the consumer would.
	kv, err := js.KeyValue(ctx, contract.BucketDeliveryState)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(ce["id"].(string) + ":" + subID))
	natstest.Eventually(t, 30*time.Second, func() error {
		e, err := kv.Get(ctx, hex.EncodeToString(sum[:]))
		if err != nil {
			return err
		}
		if !bytes.Contains(e.Value(), []byte(`"state":"delivered"`)) {
			return fmt.Errorf("pair record %s", e.Value())
		}
		return nil
	})
	d := payload.Delivery{Tenant: tenant, SubscriptionID: subID, NotificationTenant: tenant,
		NotificationID: ce["id"].(string), NotificationType: ce["type"].(string), Notification: notification, Attempt: 1}
	e := event.New()
	e.SetID("redelivery-test")
	e.SetSource("urn:herald:test")
	e.SetType(payload.TypeDelivery)
	e.SetExtension("tenant", tenant)
	if err := e.SetData("application/json", d); err != nil {
		t.Fatal(err)
	}
	ack, err := bus.PublishEvent(ctx, js, contract.DeliverySubject(tenant, subID), "redelivery-test", e)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the deliverers have consumed and acked it.
	natstest.Eventually(t, 30*time.Second, func() error {
		c, err := js.Consumer(ctx, contract.StreamDeliveries, contract.ConsumerDeliverer)
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.AckFloor.Stream < ack.Sequence || info.NumAckPending > 0 {
			return fmt.Errorf("redelivered pair not settled yet: ack floor %d < %d", info.AckFloor.Stream, ack.Sequence)
		}
		return nil
	})
}

func TestBadInput(t *testing.T) {
	h := startHerald(t)
	call(t, h, "POST", "/v1/tenants", "application/json", map[string]any{"id": "acme", "name": "Acme", "kind": "account"}, http.StatusCreated)

	// Unknown tenant, malformed event, no token, body too large.
	call(t, h, "POST", "/v1/tenants/nobody/events", "application/cloudevents+json",
		`{"specversion":"1.0","id":"1","source":"s","type":"x.y"}`, http.StatusNotFound)
	p := call(t, h, "POST", "/v1/tenants/acme/events", "application/cloudevents+json",
		`{"specversion":"1.0","id":"1","type":"x.y"}`, http.StatusBadRequest)
	if !strings.Contains(fmt.Sprint(p), "source") {
		t.Errorf("problem does not name the missing field: %v", p)
	}
	req, _ := http.NewRequest("POST", h.HTTPURL+"/v1/tenants/acme/events", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Errorf("no token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	big := `{"specversion":"1.0","id":"1","source":"s","type":"x.y","data":"` + strings.Repeat("a", 1<<20+10) + `"}`
	call(t, h, "POST", "/v1/tenants/acme/events", "application/cloudevents+json", big, http.StatusRequestEntityTooLarge)
}

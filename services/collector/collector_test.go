package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/secretbox"
	"github.com/heraldhq/herald/services/internal/domain/tenancy"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

const adminToken = "test-admin-token-123456"

type harness struct {
	ns  *natstest.Server
	svc *Service
	url string
}

func testConfig() Config {
	c := DefaultConfig()
	c.PublishTimeout = 2 * time.Second
	return c
}

// start runs a collector on ns with tenants acme (vManage basic auth
// cleur/cleur), beta, and strict (no unknown types when the operator
// disallows them).
func start(t testing.TB, ns *natstest.Server, cfg Config) *harness {
	t.Helper()
	ctx := context.Background()
	keys, err := secretbox.Parse(secretbox.NewKeySpec())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := bus.EnsureBucket(ctx, ns.JS, contract.Bucket(contract.BucketTenants, contract.DefaultTopology))
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range []tenancy.Tenant{
		{ID: "acme", Name: "Acme", Kind: tenancy.KindProject, Settings: tenancy.Settings{
			SourceAuth: map[string]tenancy.BasicAuth{"vmanage": {Username: "cleur", PasswordSealed: keys.Seal("cleur")}},
		}},
		{ID: "beta", Name: "Beta", Kind: tenancy.KindProject},
		{ID: "slow", Name: "Slow", Kind: tenancy.KindProject, Settings: tenancy.Settings{IngestRateLimit: 1}},
		{ID: "open", Name: "Open", Kind: tenancy.KindProject, Settings: tenancy.Settings{AllowUnknownTypes: true}},
	} {
		b, _ := json.Marshal(tn)
		if _, err := kv.Put(ctx, tn.ID, b); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := New(cfg, service.Deps{
		NC: ns.NC, JS: ns.JS, Logger: slog.New(slog.DiscardHandler), Topology: contract.DefaultTopology,
		Auth: apiauth.NewAdminToken(adminToken), Keys: keys,
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	natstest.Eventually(t, 20*time.Second, svc.Ready)
	mux := http.NewServeMux()
	svc.Routes(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &harness{ns: ns, svc: svc, url: hs.URL}
}

// post sends body with the admin token unless headers set Authorization.
func (h *harness) post(t testing.TB, path, contentType, body string, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header[http.CanonicalHeaderKey(headers[i])] = []string{headers[i+1]}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func decodeResponse(t testing.TB, b []byte) response {
	t.Helper()
	var r response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return r
}

// lastEvent returns the last stored event on subject.
func lastEvent(t testing.TB, js jetstream.JetStream, subject string) event.Event {
	t.Helper()
	st, err := js.Stream(context.Background(), contract.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatalf("no message on %s: %v", subject, err)
	}
	e, err := cenats.Decode(m.Header, m.Data)
	if err != nil {
		t.Fatalf("decode stored event: %v", err)
	}
	return e
}

func streamCount(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), contract.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

const structured = `{"specversion":"1.0","id":"evt-1","source":"urn:fleet:rtr","type":"server.rebooted","subject":"RTR-42","data":{"router_id":"RTR-42"}}`

func TestContentModes(t *testing.T) {
	t.Parallel()
	h := start(t, natstest.Run(t), testConfig())

	code, _, b := h.post(t, "/v1/tenants/acme/events", "application/cloudevents+json; charset=utf-8", structured)
	if code != http.StatusAccepted {
		t.Fatalf("structured: %d %s", code, b)
	}
	if r := decodeResponse(t, b); r.Accepted != 1 || r.Results[0].Status != statusAccepted || r.Results[0].ID != "evt-1" {
		t.Errorf("structured response %+v", r)
	}
	e := lastEvent(t, h.ns.JS, "events.acme.server.rebooted")
	if e.ID() != "evt-1" || e.Extensions()["tenant"] != "acme" || !bytes.Contains(e.Data(), []byte("RTR-42")) {
		t.Errorf("stored %v", e)
	}

	// Binary: attributes percent-encoded, extension included.
	code, _, b = h.post(t, "/v1/tenants/acme/events", "application/json", `{"router_id":"RTR-7"}`,
		"ce-specversion", "1.0", "ce-id", "evt-bin", "ce-source", "urn:fleet:rtr", "ce-type", "router.booted",
		"ce-subject", "caf%C3%A9%20%25", "ce-time", "2024-05-02T10:07:00Z", "ce-region", "eu%2Dwest")
	if code != http.StatusAccepted {
		t.Fatalf("binary: %d %s", code, b)
	}
	e = lastEvent(t, h.ns.JS, "events.acme.router.booted")
	if e.Subject() != "café %" || e.Extensions()["region"] != "eu-west" || e.Time().Format(time.RFC3339) != "2024-05-02T10:07:00Z" || string(e.Data()) != `{"router_id":"RTR-7"}` {
		t.Errorf("binary stored %v", e)
	}

	// Batch: one valid, one invalid, one duplicate of the first.
	batch := `[` + structured + `,{"specversion":"1.0","id":"b-2","type":"x.y"},{"specversion":"1.0","id":"b-3","source":"s","type":"batch.item"}]`
	code, _, b = h.post(t, "/v1/tenants/acme/events", "application/cloudevents-batch+json", batch)
	if code != http.StatusAccepted {
		t.Fatalf("batch: %d %s", code, b)
	}
	r := decodeResponse(t, b)
	want := []string{statusDuplicate, statusRejected, statusAccepted}
	for i, res := range r.Results {
		if res.Status != want[i] {
			t.Errorf("batch result %d: %+v, want %s", i, res, want[i])
		}
	}
	if r.Results[1].Pointer != "/1/source" || r.Results[1].Reason == "" {
		t.Errorf("rejected item names %q (%s), want /1/source", r.Results[1].Pointer, r.Results[1].Reason)
	}
	lastEvent(t, h.ns.JS, "events.acme.batch.item")
	if n := streamCount(t, h.ns.JS); n != 3 {
		t.Errorf("stream holds %d events, want 3", n)
	}
}

func TestDedup(t *testing.T) {
	t.Parallel()
	h := start(t, natstest.Run(t), testConfig())
	for i, want := range []string{statusAccepted, statusDuplicate} {
		code, _, b := h.post(t, "/v1/tenants/acme/events", "application/cloudevents+json", structured)
		if code != http.StatusAccepted {
			t.Fatalf("post %d: %d %s", i, code, b)
		}
		if r := decodeResponse(t, b); r.Results[0].Status != want {
			t.Errorf("post %d: %+v, want %s", i, r.Results[0], want)
		}
	}
	// Same id from another source is another event.
	code, _, _ := h.post(t, "/v1/tenants/acme/events", "application/cloudevents+json", strings.Replace(structured, "urn:fleet:rtr", "urn:other", 1))
	if code != http.StatusAccepted {
		t.Fatal(code)
	}
	if n := streamCount(t, h.ns.JS); n != 2 {
		t.Errorf("stream holds %d events, want 2", n)
	}
}

type problemDoc struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Pointer string `json:"pointer"`
		Detail  string `json:"detail"`
	} `json:"errors"`
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.AllowUnknownTypes = false
	cfg.MaxBodyBytes = 4096
	cfg.MaxBatch = 3
	h := start(t, natstest.Run(t), cfg)
	lmc := `{"specversion":"1.0","id":"l1","source":"s","type":"lmc.alert","data":{"alertId":"a","title":"t","state":7}}`
	ce := "application/cloudevents+json"
	for _, c := range []struct {
		name, path, ct, body string
		headers              []string
		status               int
		pointer              string
	}{
		{"no source", "/v1/tenants/acme/events", ce, `{"specversion":"1.0","id":"1","type":"x.y"}`, nil, 400, "/source"},
		{"bad type", "/v1/tenants/open/events", ce, `{"specversion":"1.0","id":"1","source":"s","type":"X Y"}`, nil, 400, "/type"},
		{"unknown type not allowed", "/v1/tenants/acme/events", ce, `{"specversion":"1.0","id":"1","source":"s","type":"x.y"}`, nil, 400, "/type"},
		{"schema violation", "/v1/tenants/acme/events", ce, lmc, nil, 400, "/data/state"},
		{"not json", "/v1/tenants/acme/events", ce, `{`, nil, 400, ""},
		{"foreign tenant extension", "/v1/tenants/open/events", ce, `{"specversion":"1.0","id":"1","source":"s","type":"x.y","tenant":"beta"}`, nil, 400, "/tenant"},
		{"bad percent", "/v1/tenants/open/events", "text/plain", "x", []string{"ce-specversion", "1.0", "ce-id", "%zz", "ce-source", "s", "ce-type", "x.y"}, 400, "header:ce-id"},
		{"bad time", "/v1/tenants/open/events", "text/plain", "x", []string{"ce-specversion", "1.0", "ce-id", "1", "ce-source", "s", "ce-type", "x.y", "ce-time", "yesterday"}, 400, "header:ce-time"},
		{"bad specversion", "/v1/tenants/open/events", "text/plain", "x", []string{"ce-specversion", "0.1"}, 400, "header:ce-specversion"},
		{"empty batch", "/v1/tenants/acme/events", mediaBatch, `[]`, nil, 400, ""},
		{"all of batch invalid", "/v1/tenants/acme/events", mediaBatch, `[{"id":"1"},{"specversion":"1.0","id":"2","source":"s","type":"lmc.alert","data":{}}]`, nil, 400, "/0"},
		{"batch too long", "/v1/tenants/acme/events", mediaBatch, `[{},{},{},{}]`, nil, 413, ""},
		{"too large", "/v1/tenants/acme/events", ce, `{"data":"` + strings.Repeat("a", 5000) + `"}`, nil, 413, ""},
		{"not a cloudevent", "/v1/tenants/acme/events", "application/json", `{}`, nil, 415, ""},
		{"no credentials", "/v1/tenants/acme/events", ce, structured, []string{"Authorization", ""}, 401, ""},
		{"wrong token", "/v1/tenants/acme/events", ce, structured, []string{"Authorization", "Bearer nope"}, 401, ""},
		{"unknown tenant", "/v1/tenants/nobody/events", ce, structured, nil, 404, ""},
		{"unknown adapter", "/v1/tenants/acme/sources/nagios", "application/json", `{}`, nil, 404, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, hdr, b := h.post(t, c.path, c.ct, c.body, c.headers...)
			if code != c.status {
				t.Fatalf("status %d, want %d: %s", code, c.status, b)
			}
			if !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json") {
				t.Errorf("content type %q", hdr.Get("Content-Type"))
			}
			var p problemDoc
			if err := json.Unmarshal(b, &p); err != nil || p.Status != c.status {
				t.Fatalf("problem %s: %v", b, err)
			}
			if c.status == 400 {
				if len(p.Errors) == 0 || p.Errors[0].Pointer != c.pointer || p.Errors[0].Detail == "" {
					t.Errorf("errors %+v, want pointer %q", p.Errors, c.pointer)
				}
			}
		})
	}
	code, _, b := h.post(t, "/v1/tenants/acme/sources/nagios", "application/json", `{}`)
	if code != 404 || !strings.Contains(string(b), "vmanage") {
		t.Errorf("unknown adapter does not list adapters: %s", b)
	}
	if n := streamCount(t, h.ns.JS); n != 0 {
		t.Errorf("bad input stored %d events", n)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxBatch = 2 // the bucket of tenant "slow" (1/s) holds 2 events
	h := start(t, natstest.Run(t), cfg)
	var codes []int
	for i := range 3 {
		code, hdr, b := h.post(t, "/v1/tenants/slow/events", "application/cloudevents+json", strings.Replace(structured, "evt-1", fmt.Sprint("r", i), 1))
		codes = append(codes, code)
		if code == http.StatusTooManyRequests {
			if hdr.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After: %s", b)
			}
			return
		}
	}
	t.Errorf("no 429 for a 1/s tenant: %v", codes)
}

func TestJetStreamDownIs503(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	h := start(t, ns, testConfig())
	ns.Shutdown()
	code, hdr, b := h.post(t, "/v1/tenants/acme/events", "application/cloudevents+json", structured)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("with JetStream down: %d (Retry-After %q) %s", code, hdr.Get("Retry-After"), b)
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	// The registry owns CHANGES; key changes are recorded there.
	if err := bus.EnsureStreams(context.Background(), ns.JS, contract.ChangesStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	h := start(t, ns, testConfig())
	code, _, b := h.post(t, "/v1/tenants/acme/keys", "application/json", `{"name":"ci"}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	var created keyView
	_ = json.Unmarshal(b, &created)
	if !strings.HasPrefix(created.Key, "hk_"+created.ID+"_") {
		t.Fatalf("key %+v", created)
	}
	auth := []string{"Authorization", "Bearer " + created.Key}
	if code, _, b := h.post(t, "/v1/tenants/acme/events", "application/cloudevents+json", structured, auth...); code != http.StatusAccepted {
		t.Errorf("post with key: %d %s", code, b)
	}
	// POST /v1/events: the key names the tenant.
	keyed := strings.Replace(structured, `"id":"`, `"id":"keyed-`, 1)
	if keyed == structured {
		t.Fatal("structured sample has no id to vary")
	}
	if code, _, b := h.post(t, "/v1/events", "application/cloudevents+json", keyed, auth...); code != http.StatusAccepted {
		t.Errorf("POST /v1/events with key: %d %s", code, b)
	}
	if e := lastEvent(t, ns.JS, "events.acme.server.rebooted"); e.ID() != "keyed-evt-1" {
		t.Errorf("POST /v1/events stored %q as acme's last event, want keyed-evt-1", e.ID())
	}
	if code, _, b := h.post(t, "/v1/events", "application/cloudevents+json", keyed); code != http.StatusBadRequest || !strings.Contains(string(b), "/v1/tenants/{tenant}/events") {
		t.Errorf("POST /v1/events with the operator token: %d %s", code, b)
	}
	if code, _, b := h.post(t, "/v1/events", "application/cloudevents+json", keyed, "Authorization", ""); code != http.StatusUnauthorized {
		t.Errorf("POST /v1/events without credentials: %d %s", code, b)
	}
	if code, _, b := h.post(t, "/v1/tenants/beta/events", "application/cloudevents+json", structured, auth...); code != http.StatusForbidden {
		t.Errorf("key of acme posting to beta: %d %s", code, b)
	}
	if code, _, _ := h.post(t, "/v1/tenants/beta/keys", "application/json", `{}`, auth...); code != http.StatusForbidden {
		t.Errorf("key of acme creating a key for beta: %d", code)
	}
	wrong := []string{"Authorization", "Bearer " + created.Key[:len(created.Key)-1] + "0"}
	if strings.HasSuffix(created.Key, "0") {
		wrong[1] = wrong[1][:len(wrong[1])-1] + "1"
	}
	if code, _, _ := h.post(t, "/v1/tenants/acme/events", "application/cloudevents+json", structured, wrong...); code != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d", code)
	}

	req, _ := http.NewRequest(http.MethodGet, h.url+"/v1/tenants/acme/keys", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(lb), created.ID) || strings.Contains(string(lb), created.Key) || strings.Contains(string(lb), "hash") {
		t.Errorf("list: %s", lb)
	}

	req, _ = http.NewRequest(http.MethodDelete, h.url+"/v1/tenants/beta/keys/"+created.ID, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoke through the wrong tenant: %v %v", resp.StatusCode, err)
	}
	req, _ = http.NewRequest(http.MethodDelete, h.url+"/v1/tenants/acme/keys/"+created.ID, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	if code, _, _ := h.post(t, "/v1/tenants/acme/events", "application/cloudevents+json", structured, auth...); code != http.StatusUnauthorized {
		t.Errorf("revoked key: %d", code)
	}
	st, err := ns.JS.Stream(context.Background(), contract.StreamChanges)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"herald.change.apikey.created", "herald.change.apikey.deleted"} {
		m, err := st.GetMsg(context.Background(), uint64(i+1))
		if err != nil {
			t.Fatalf("change %d: %v", i+1, err)
		}
		e, err := cenats.Decode(m.Header, m.Data)
		if err != nil || e.Type() != want || m.Subject != "changes.acme.apikey" || !bytes.Contains(e.Data(), []byte(`"actor":"admin"`)) {
			t.Errorf("change %d: %v %v", i+1, e, err)
		}
	}
}

func TestIngestRequestReply(t *testing.T) {
	t.Parallel()
	h := start(t, natstest.Run(t), testConfig())
	ask := func(tenant, body string) IngestReply {
		m, err := h.ns.NC.Request(contract.IngestSubject(tenant), []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r IngestReply
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("%s: %v", m.Data, err)
		}
		return r
	}
	if r := ask("acme", structured); r.Status != 202 || r.Result.Status != statusAccepted {
		t.Errorf("first: %+v", r)
	}
	if r := ask("acme", structured); r.Status != 202 || r.Result.Status != statusDuplicate {
		t.Errorf("second: %+v", r)
	}
	if r := ask("acme", `{"specversion":"1.0","id":"1","source":"s","type":"lmc.alert","data":{}}`); r.Status != 400 || r.Problem == nil || r.Problem.Errors[0].Pointer != "/data" {
		t.Errorf("invalid: %+v", r)
	}
	if r := ask("nobody", structured); r.Status != 404 {
		t.Errorf("unknown tenant: %+v", r)
	}
	// A binary-mode NATS message, as bus.PublishEvent would send it.
	e := event.New()
	e.SetID("nats-1")
	e.SetSource("urn:internal")
	e.SetType("internal.thing")
	msg, err := cenats.Encode(context.Background(), contract.IngestSubject("acme"), e, cenats.Binary)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := h.ns.NC.RequestMsg(msg, 10*time.Second)
	if err != nil || !bytes.Contains(rm.Data, []byte(`"status":202`)) {
		t.Fatalf("binary ingest: %v %s", err, rm.Data)
	}
	lastEvent(t, h.ns.JS, "events.acme.internal.thing")

	// JSON that is not UTF-8 is refused, structured or as binary-mode data;
	// binary-mode data of another content type is opaque bytes.
	bad := `{"specversion":"1.0","id":"bad-` + "\xff" + `","source":"s","type":"internal.thing","data":{}}`
	if r := ask("acme", bad); r.Status != 400 || r.Problem == nil || !strings.Contains(r.Problem.Title+r.Problem.Detail, "UTF-8") {
		t.Errorf("structured, invalid UTF-8: %+v", r)
	}
	binaryWith := func(id, contentType string, data []byte) IngestReply {
		e := event.New()
		e.SetID(id)
		e.SetSource("urn:internal")
		e.SetType("internal.thing")
		if err := e.SetData(contentType, data); err != nil {
			t.Fatal(err)
		}
		msg, err := cenats.Encode(context.Background(), contract.IngestSubject("acme"), e, cenats.Binary)
		if err != nil {
			t.Fatal(err)
		}
		rm, err := h.ns.NC.RequestMsg(msg, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r IngestReply
		if err := json.Unmarshal(rm.Data, &r); err != nil {
			t.Fatalf("%s: %v", rm.Data, err)
		}
		return r
	}
	if r := binaryWith("nats-bad", "application/json", []byte("{\"k\":\"\xff\"}")); r.Status != 400 {
		t.Errorf("binary JSON data, invalid UTF-8: %+v", r)
	}
	if r := binaryWith("nats-octets", "application/octet-stream", []byte{0xff, 0xfe, 0x00}); r.Status != 202 {
		t.Errorf("binary octet-stream data: %+v", r)
	}
}

// TestNoAcceptedEventLost posts concurrently while JetStream stops and
// restarts on the same storage: every event answered 202 must be stored.
func TestNoAcceptedEventLost(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	dir, url := ns.Dir, ns.ClientURL()
	h := start(t, ns, testConfig())

	type answer struct {
		id   string
		code int
	}
	answers := make(chan answer, 1000)
	stop := make(chan struct{})
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				body := strings.Replace(structured, "evt-1", id, 1)
				req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/tenants/acme/events", strings.NewReader(body))
				req.Header.Set("Content-Type", mediaStructured)
				req.Header.Set("Authorization", "Bearer "+adminToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				select {
				case answers <- answer{id, resp.StatusCode}:
				default:
					return
				}
			}
		}()
	}
	// Let some events in, then stop the server mid-flight.
	natstest.Eventually(t, 20*time.Second, func() error {
		if len(answers) < 20 {
			return errors.New("fewer than 20 answers yet")
		}
		return nil
	})
	ns.Shutdown()
	ns.WaitForShutdown()
	ns2 := natstest.RunInDir(t, dir, portOf(t, url))
	natstest.Eventually(t, 20*time.Second, func() error {
		if len(answers) < 60 {
			return errors.New("fewer than 60 answers yet")
		}
		return nil
	})
	close(stop)
	for range 4 {
		<-done
	}
	close(answers)
	accepted, n503 := map[string]bool{}, 0
	for a := range answers {
		if a.code == http.StatusAccepted {
			accepted[a.id] = true
		} else if a.code == http.StatusServiceUnavailable {
			n503++
		} else {
			t.Errorf("event %s got %d", a.id, a.code)
		}
	}
	st, err := ns2.JS.Stream(context.Background(), contract.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	cons, err := st.OrderedConsumer(context.Background(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(context.Background())
	for range info.State.Msgs {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		e, err := cenats.Decode(m.Headers(), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		stored[e.ID()] = true
	}
	for id := range accepted {
		if !stored[id] {
			t.Errorf("event %s was answered 202 but is not stored", id)
		}
	}
	t.Logf("%d accepted, %d answered 503, %d stored", len(accepted), n503, len(stored))
}

func portOf(t testing.TB, url string) int {
	t.Helper()
	i := strings.LastIndex(url, ":")
	var p int
	if _, err := fmt.Sscan(url[i+1:], &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNotReadyIs503(t *testing.T) {
	t.Parallel()
	ns := natstest.Run(t)
	svc, err := New(testConfig(), service.Deps{NC: ns.NC, JS: ns.JS, Auth: apiauth.NewAdminToken(adminToken)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes(mux)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	h := &harness{ns: ns, svc: svc, url: hs.URL}
	code, hdr, b := h.post(t, "/v1/tenants/acme/events", mediaStructured, structured)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("before Run: %d %s", code, b)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"HERALD_COLLECTOR_MAX_BODY_BYTES": "2048", "HERALD_COLLECTOR_ALLOW_UNKNOWN_TYPES": "false"}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || c.MaxBodyBytes != 2048 || c.AllowUnknownTypes || c.MaxBatch != 500 {
		t.Errorf("%+v %v", c, err)
	}
	env = map[string]string{"HERALD_COLLECTOR_MAX_BATCH": "0", "HERALD_COLLECTOR_RATE_LIMIT": "x"}
	_, err = ConfigFromEnv(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "RATE_LIMIT") || !strings.Contains(err.Error(), "max batch") {
		t.Errorf("want both errors, got %v", err)
	}
}

// TestApplicationJSON: what most HTTP tools send. A JSON object with
// specversion is a structured CloudEvent and an array of them a batch; any
// other body is a 415 that names the three accepted forms.
func TestApplicationJSON(t *testing.T) {
	t.Parallel()
	h := start(t, natstest.Run(t), testConfig())

	code, _, b := h.post(t, "/v1/tenants/acme/events", "application/json; charset=utf-8", structured)
	if code != http.StatusAccepted {
		t.Fatalf("structured as application/json: %d %s", code, b)
	}
	if r := decodeResponse(t, b); r.Accepted != 1 || r.Results[0].ID != "evt-1" {
		t.Errorf("structured response %+v", r)
	}
	if e := lastEvent(t, h.ns.JS, "events.acme.server.rebooted"); e.ID() != "evt-1" || !bytes.Contains(e.Data(), []byte("RTR-42")) {
		t.Errorf("stored %v", e)
	}

	batch := `[{"specversion":"1.0","id":"j-1","source":"s","type":"batch.item"},{"id":"j-2"}]`
	code, _, b = h.post(t, "/v1/tenants/acme/events", "application/json", batch)
	if code != http.StatusAccepted {
		t.Fatalf("batch as application/json: %d %s", code, b)
	}
	r := decodeResponse(t, b)
	if len(r.Results) != 2 || r.Results[0].Status != statusAccepted || r.Results[1].Status != statusRejected || r.Results[1].Pointer == "" {
		t.Errorf("batch results %+v", r.Results)
	}

	for _, c := range []struct{ name, ct, body string }{
		{"object without specversion", "application/json", `{"id":"x","source":"s","type":"a.b"}`},
		{"array without events", "application/json", `[1,{"id":"x"}]`},
		{"a JSON string", "application/json", `"hello"`},
		{"text", "text/plain", structured},
		{"no content type", "", structured},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, b := h.post(t, "/v1/tenants/acme/events", c.ct, c.body)
			if code != http.StatusUnsupportedMediaType {
				t.Fatalf("status %d, want 415: %s", code, b)
			}
			var p problemDoc
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			for _, form := range []string{"structured", mediaStructured, "batch", mediaBatch, "binary", "ce-specversion", "application/json"} {
				if !strings.Contains(p.Detail, form) {
					t.Errorf("415 detail does not name %q: %s", form, p.Detail)
				}
			}
		})
	}

	code, _, b = h.post(t, "/v1/tenants/acme/events", "application/json", `{"specversion":"1.0",`)
	if code != http.StatusBadRequest || !strings.Contains(string(b), "not valid JSON") {
		t.Errorf("malformed application/json: %d %s", code, b)
	}
	if n := streamCount(t, h.ns.JS); n != 2 {
		t.Errorf("stream holds %d events, want 2", n)
	}
}

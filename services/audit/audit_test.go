package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/schemas"
	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/auditchain"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

const adminToken = "test-admin-token-123456"

// tenantKey authenticates "Bearer beta-key" as tenant beta, standing in for
// the collector's API keys.
type tenantKey struct{}

func (tenantKey) Authenticate(r *http.Request) (apiauth.Principal, error) {
	if tok, ok := apiauth.BearerToken(r); ok && tok == "beta-key" {
		return apiauth.Principal{Actor: "apikey:beta/k1", Tenant: "beta"}, nil
	}
	return apiauth.Principal{}, apiauth.ErrNoCredentials
}

type harness struct {
	t   testing.TB
	srv *natstest.Server
	svc *Service
	url string
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	s := natstest.Run(t)
	ctx := context.Background()
	if err := bus.EnsureStreams(ctx, s.JS, contract.EventsStream(contract.DefaultTopology), contract.NotificationsStream(contract.DefaultTopology),
		contract.AttemptsStream(contract.DefaultTopology), contract.ChangesStream(contract.DefaultTopology)); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: s}
	h.svc = h.start()
	return h
}

// start runs one more audit instance on the harness's server.
func (h *harness) start() *Service {
	t := h.t
	t.Helper()
	cfg, err := ConfigFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(cfg, service.Deps{NC: h.srv.NC, JS: h.srv.JS, Logger: slog.New(slog.DiscardHandler),
		Topology: contract.DefaultTopology, Auth: apiauth.Chain{apiauth.NewAdminToken(adminToken), tenantKey{}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	mux := http.NewServeMux()
	svc.Routes(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	if h.url == "" {
		h.url = hs.URL
	}
	natstest.Eventually(t, 20*time.Second, svc.Ready)
	return svc
}

func (h *harness) publish(subject, id, typ, tenant, ceSubject string, data any, ext map[string]string) {
	h.t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetSource("https://src.example/" + typ)
	e.SetType(typ)
	e.SetExtension("tenant", tenant)
	if ceSubject != "" {
		e.SetSubject(ceSubject)
	}
	for k, v := range ext {
		e.SetExtension(k, v)
	}
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		h.t.Fatal(err)
	}
	if _, err := bus.PublishEvent(context.Background(), h.srv.JS, subject, subject+"/"+id, e); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) attempt(a payload.Attempt) {
	h.t.Helper()
	h.publish(contract.AttemptSubject(a.Tenant, a.SubscriptionID), a.AttemptID, payload.TypeAttempt, a.Tenant, a.Subject, a, nil)
}

// records reads every AUDIT record of tenant, straight from the stream.
func (h *harness) records(tenant string) []auditchain.Record {
	h.t.Helper()
	var out []auditchain.Record
	for _, m := range h.raw(contract.AuditSubject(tenant)) {
		var r auditchain.Record
		if err := json.Unmarshal(m.Data, &r); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func (h *harness) raw(filter string) []*nats.Msg {
	h.t.Helper()
	ctx := context.Background()
	st, err := h.srv.JS.Stream(ctx, contract.StreamAudit)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*nats.Msg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			h.t.Fatal(err)
		}
		if filter == "" || m.Subject == filter {
			out = append(out, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		}
	}
	return out
}

func (h *harness) waitRecords(tenant string, n int) {
	h.t.Helper()
	natstest.Eventually(h.t, 20*time.Second, func() error {
		if got := len(h.records(tenant)); got != n {
			return fmt.Errorf("%d records of %s, want %d", got, tenant, n)
		}
		return nil
	})
}

func (h *harness) get(path, token string, into any) int {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			h.t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func (h *harness) verify(tenant string) auditchain.Result {
	h.t.Helper()
	var res auditchain.Result
	if code := h.get("/v1/tenants/"+tenant+"/audit/verify", adminToken, &res); code != http.StatusOK {
		h.t.Fatalf("verify: status %d", code)
	}
	return res
}

// story publishes one event, the two notifications it caused and three
// attempts for the first one, plus a registry change: 7 records.
func (h *harness) story(tenant string) {
	h.publish(contract.EventSubject(tenant, "lmc.alert"), "evt-1", "lmc.alert", tenant, "alert-7", map[string]any{"alertId": "alert-7"}, nil)
	h.publish(contract.NotificationSubject(tenant, "alert.opened"), "ntf-1", "alert.opened", tenant, "alert-7",
		map[string]any{"alertId": "alert-7", "eventIds": []string{"evt-1"}}, nil)
	h.publish(contract.NotificationSubject(tenant, "custom.thing"), "ntf-2", "custom.thing", tenant, "", map[string]any{"x": 1},
		map[string]string{"causationid": "evt-1"})
	base := payload.Attempt{Tenant: tenant, NotificationID: "ntf-1", NotificationType: "alert.opened", Subject: "alert-7",
		URL: "https://hooks.example/in", StartedAt: time.Now().UTC()}
	a1, a2, a3 := base, base, base
	a1.AttemptID, a1.SubscriptionID, a1.Attempt, a1.Outcome, a1.StatusCode, a1.ErrorClass, a1.ResponseSnippet, a1.LatencyMs =
		"att-1", "sub-1", 1, payload.OutcomeRetrying, 503, payload.ErrClassHTTPStatus, "busy", 12
	a2.AttemptID, a2.SubscriptionID, a2.Attempt, a2.Outcome, a2.StatusCode, a2.ResponseSnippet, a2.LatencyMs =
		"att-2", "sub-1", 2, payload.OutcomeDelivered, 200, `{"ok":true}`, 7
	a3.AttemptID, a3.SubscriptionID, a3.Attempt, a3.Outcome, a3.StatusCode = "att-3", "sub-2", 1, payload.OutcomeDelivered, 204
	a1.WebhookID, a2.WebhookID, a3.WebhookID = "whk-ntf-1-sub-1", "whk-ntf-1-sub-1", "whk-ntf-1-sub-2"
	for _, a := range []payload.Attempt{a1, a2, a3} {
		h.attempt(a)
	}
	h.publish(contract.ChangeSubject(tenant, "subscription"), "chg-1", payload.TypeChangePrefix+"subscription.created", tenant, "",
		payload.Change{Tenant: tenant, Entity: "subscription", EntityID: "sub-1", Action: "created", Actor: "admin", At: time.Now()}, nil)
}

func TestTrailQueryAndVerify(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.story("acme")
	h.waitRecords("acme", 7)

	for _, m := range h.raw("audit.acme") {
		if err := schemas.Validate(auditchain.TypeRecord, m.Data); err != nil {
			t.Errorf("record does not match its schema: %v", err)
		}
	}
	if res := h.verify("acme"); !res.OK || res.Records != 7 || res.FirstSeq != 1 || res.LastSeq != 7 {
		t.Fatalf("verify: %+v", res)
	}

	// Was evt-1 delivered to sub-1, when, and what did it answer?
	var p Page
	h.get("/v1/tenants/acme/audit?event=evt-1&subscription=sub-1", adminToken, &p)
	got := map[string]auditchain.Record{}
	for _, r := range p.Items {
		got[r.ID] = r
	}
	if len(p.Items) != 5 || got["evt-1"].Kind != auditchain.KindEvent || got["ntf-1"].Kind != auditchain.KindNotification ||
		got["ntf-2"].Kind != auditchain.KindNotification || got["att-1"].StatusCode != 503 || got["att-2"].ResponseSnippet != `{"ok":true}` {
		t.Errorf("event story: %+v", p.Items)
	}
	if _, ok := got["att-3"]; ok {
		t.Error("attempt to sub-2 listed for subscription sub-1")
	}

	p = Page{}
	h.get("/v1/tenants/acme/audit?notification=ntf-1", adminToken, &p)
	// Inputs of different streams interleave; within one stream order holds.
	if ids := sortedIDs(p); ids != "att-1,att-2,att-3,ntf-1" {
		t.Errorf("by notification: %s", ids)
	}
	p = Page{}
	h.get("/v1/tenants/acme/audit?subject=alert-7&kind=attempt", adminToken, &p)
	if ids := recordIDs(p); ids != "att-1,att-2,att-3" {
		t.Errorf("by subject: %s", ids)
	}
	p = Page{}
	h.get("/v1/tenants/acme/audit?subscription=sub-1", adminToken, &p)
	if ids := sortedIDs(p); ids != "att-1,att-2,chg-1" {
		t.Errorf("by subscription: %s", ids)
	}
	// The delivery log shows pairs, each with its attempts, not records.
	var dp DeliveryPage
	h.get("/v1/tenants/acme/deliveries?subscription=sub-1&outcome=delivered", adminToken, &dp)
	if got := pairList(dp); got != "ntf-1/sub-1 delivered [retrying 503 http_status, delivered 200]" {
		t.Errorf("deliveries delivered: %s", got)
	}
	if d := dp.Items[0]; d.Pair != "whk-ntf-1-sub-1" || d.NotificationType != "alert.opened" || d.Attempts[0].LatencyMs != 12 ||
		d.Links.Audit != "/v1/tenants/acme/audit?notification=ntf-1&subscription=sub-1" {
		t.Errorf("delivery: %+v", d)
	}
	dp = DeliveryPage{}
	h.get("/v1/tenants/acme/deliveries?since="+time.Now().Add(time.Hour).Format(time.RFC3339), adminToken, &dp)
	if len(dp.Items) != 0 {
		t.Errorf("deliveries since the future: %s", pairList(dp))
	}
	var raw map[string][]map[string]any
	h.get("/v1/tenants/acme/deliveries", adminToken, &raw)
	for _, it := range raw["items"] {
		for _, k := range []string{"prevHash", "hash", "sourceSeq", "seq"} {
			if _, ok := it[k]; ok {
				t.Errorf("delivery shows the audit record's %s: %v", k, it)
			}
		}
	}

	// Pagination: deliveries newest first, one pair per page and each pair
	// once (att-1 is not a pair of its own); the audit in order.
	if ids := h.deliveryPages("/v1/tenants/acme/deliveries?limit=1"); ids != "ntf-1/sub-2,ntf-1/sub-1" {
		t.Errorf("deliveries pages: %s", ids)
	}
	if ids := h.pages("/v1/tenants/acme/audit?limit=2"); sortedList(ids) != "att-1,att-2,att-3,chg-1,evt-1,ntf-1,ntf-2" {
		t.Errorf("audit pages: %s", ids)
	}

	// Auth.
	if code := h.get("/v1/tenants/acme/audit", "", nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	if code := h.get("/v1/tenants/acme/audit", "wrong-token-1234567", nil); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	if code := h.get("/v1/tenants/acme/deliveries", "beta-key", nil); code != http.StatusForbidden {
		t.Errorf("other tenant's key: %d", code)
	}
	// The key passes; beta has no trail yet.
	if code := h.get("/v1/tenants/beta/audit/verify", "beta-key", nil); code != http.StatusNotFound {
		t.Errorf("own tenant's key: %d", code)
	}
	if code := h.get("/v1/tenants/acme/audit?limit=0", adminToken, nil); code != http.StatusBadRequest {
		t.Errorf("bad limit: %d", code)
	}

	// Tamper: delete record 3 from the stream.
	st, _ := h.srv.JS.Stream(context.Background(), contract.StreamAudit)
	if err := st.DeleteMsg(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if res := h.verify("acme"); res.OK || res.Broken.Seq != 3 {
		t.Errorf("after deleting record 3: %+v", res)
	}
}

func recordIDs(p Page) string {
	var ids []string
	for _, r := range p.Items {
		ids = append(ids, r.ID)
	}
	return strings.Join(ids, ",")
}

func sortedIDs(p Page) string { return sortedList(recordIDs(p)) }

func sortedList(ids string) string {
	l := strings.Split(ids, ",")
	sort.Strings(l)
	return strings.Join(l, ",")
}

func (h *harness) pages(path string) string {
	h.t.Helper()
	var ids []string
	cursor := ""
	for i := 0; i < 20; i++ {
		var p Page
		u := path
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		if code := h.get(u, adminToken, &p); code != http.StatusOK {
			h.t.Fatalf("%s: %d", u, code)
		}
		if r := recordIDs(p); r != "" {
			ids = append(ids, r)
		}
		if p.NextCursor == "" {
			return strings.Join(ids, ",")
		}
		cursor = p.NextCursor
	}
	h.t.Fatal("pagination does not end")
	return ""
}

// A forged record published with the right subject breaks verification at
// its sequence.
func TestVerifyDetectsForgedRecord(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.story("acme")
	h.waitRecords("acme", 7)
	recs := h.records("acme")
	forged := recs[6]
	forged.Seq, forged.PrevHash, forged.StatusCode = 8, forged.Hash, 200 // claims a success that never happened
	b, _ := json.Marshal(forged)                                         // keeps the copied hash: wrong for this content
	if _, err := h.srv.JS.Publish(context.Background(), contract.AuditSubject("acme"), b); err != nil {
		t.Fatal(err)
	}
	if res := h.verify("acme"); res.OK || res.Broken.Seq != 8 || !strings.Contains(res.Broken.Reason, "hash") {
		t.Errorf("forged record: %+v", res)
	}
	// Cutting off the start is not mistaken for retention: no checkpoint.
	st, _ := h.srv.JS.Stream(context.Background(), contract.StreamAudit)
	if err := st.DeleteMsg(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if res := h.verify("acme"); res.OK || res.Broken.Seq != 1 {
		t.Errorf("genesis deleted: %+v", res)
	}
}

// Inputs delivered again (consumer reset, new instance, outside any
// duplicate window for the index) are recorded once; two instances
// appending to one tenant at once do not fork the chain.
func TestRedeliveryAndTwoInstances(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start() // a second instance sharing the durables
	const n = 40
	for i := 0; i < n; i++ {
		h.attempt(payload.Attempt{Tenant: "acme", AttemptID: fmt.Sprintf("att-%d", i), SubscriptionID: fmt.Sprintf("sub-%d", i%3),
			NotificationID: "ntf-1", Attempt: 1, Outcome: payload.OutcomeDelivered, StatusCode: 200, URL: "https://h.example/x"})
	}
	h.waitRecords("acme", n)

	// Replay every ATTEMPTS message: a new durable from the start is a
	// redelivery of all of them to the appenders.
	ctx := context.Background()
	cfg := contract.AuditConsumers()[contract.StreamAttempts]
	if err := h.srv.JS.DeleteConsumer(ctx, contract.StreamAttempts, cfg.Durable); err != nil {
		t.Fatal(err)
	}
	third := h.start() // a new instance recreates the durable; its index is rebuilt from AUDIT
	for i := 0; i < 5; i++ {
		_ = third.append(ctx, &auditchain.Record{Tenant: "acme", Kind: auditchain.KindAttempt, SourceStream: contract.StreamAttempts,
			SourceSeq: 1, ID: "att-0", Type: payload.TypeAttempt, At: time.Now()})
	}
	natstest.Eventually(t, 20*time.Second, func() error {
		c, err := h.srv.JS.Consumer(ctx, contract.StreamAttempts, cfg.Durable)
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 || info.Delivered.Stream < n {
			return fmt.Errorf("consumer pending %d ack-pending %d", info.NumPending, info.NumAckPending)
		}
		return nil
	})
	if got := len(h.records("acme")); got != n {
		t.Errorf("%d records after redelivery, want %d", got, n)
	}
	if res := h.verify("acme"); !res.OK || res.Records != n {
		t.Errorf("verify: %+v", res)
	}
}

// No secret, signature, Authorization value or credential in a URL reaches
// the trail, whatever field of an attempt, change or event carries it.
func TestRedaction(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const secret = "whsec_S3cr3tV4lu3ForTheAuditTest"
	const sig = "v1,c2VjcmV0LXNpZ25hdHVyZS1ieXRlcw=="
	plain := "Zm9vYmFyYmF6cXV4" // a bare credential seen only after a key word
	h.publish(contract.EventSubject("acme", "lmc.alert"), "evt-s", "lmc.alert", "acme", "subject?token="+plain,
		map[string]any{"secret": secret, "password": plain}, nil)
	h.attempt(payload.Attempt{Tenant: "acme", AttemptID: "att-s", SubscriptionID: "sub-1", NotificationID: "ntf-s",
		NotificationType: "alert.opened", WebhookID: "msg_1", Attempt: 1, Outcome: payload.OutcomeFailed, StatusCode: 401,
		URL:             "https://user:" + secret + "@hooks.example/in?api_key=" + plain + "#frag" + plain,
		Error:           "401 from https://u:" + plain + "@hooks.example/?sig=" + plain + " with Authorization: Bearer " + secret,
		ResponseSnippet: `{"error":"bad signature","got":"webhook-signature: ` + sig + `","secret":"` + plain + `","echo":"` + secret + `"}`,
		ErrorClass:      payload.ErrClassHTTPStatus})
	h.publish(contract.ChangeSubject("acme", "subscription"), "chg-s", payload.TypeChangePrefix+"subscription.rotated", "acme", "",
		payload.Change{Tenant: "acme", Entity: "subscription", EntityID: "sub-1", Action: "rotated", Actor: "apikey:acme/k1 token=" + plain,
			Diff: map[string]payload.FieldDelta{"secret": {Old: secret, New: secret + "2"}, "url": {Old: "https://a:" + plain + "@x/"}}}, nil)
	h.waitRecords("acme", 3)
	for _, m := range h.raw("") {
		all := string(m.Data)
		for k, v := range m.Header {
			all += k + strings.Join(v, " ")
		}
		for _, s := range []string{secret, plain, sig, "c2VjcmV0LXNpZ25hdHVyZS1ieXRlcw"} {
			if strings.Contains(all, s) {
				t.Errorf("trail holds %q: %s", s, all)
			}
		}
	}
	var p DeliveryPage
	h.get("/v1/tenants/acme/deliveries", adminToken, &p)
	if len(p.Items) != 1 || p.Items[0].URL != "https://hooks.example/in" || p.Items[0].Attempts[0].StatusCode != 401 {
		t.Errorf("redacted attempt: %+v", p.Items)
	}
}

func TestScrub(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@h.example/a?b=c#d":    "https://h.example/a",
		"Authorization: Bearer abc.def":    "Authorization: [redacted]",
		"call https://h.example/x?k=v now": "call https://h.example/x now",
		"plain text":                       "plain text",
	} {
		if got := scrub(in); got != want {
			t.Errorf("scrub(%q) = %q, want %q", in, got, want)
		}
	}
	if got := truncate(strings.Repeat("é", 300), 511); !utf8.ValidString(got) || len(got) > 514 {
		t.Errorf("truncate cut a rune: %q", got[len(got)-6:])
	}
}

// Retention purges a prefix of the chain; what remains still verifies,
// anchored at the first kept record, and appends continue the chain, also
// after every record of the tenant has expired.
func TestRetentionKeepsVerifiable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for i := 0; i < 7; i++ { // one at a time, so chain order is time order
		h.attempt(payload.Attempt{Tenant: "acme", AttemptID: fmt.Sprintf("att-%d", i), SubscriptionID: "sub-1", Attempt: 1, Outcome: payload.OutcomeDelivered})
		h.waitRecords("acme", i+1)
	}
	recs := h.records("acme")
	cutoff := recs[3].At
	keep := 0
	for keep < len(recs) && recs[keep].At.Before(cutoff) {
		keep++
	}
	ctx := context.Background()
	h.svc.purgeTenant(ctx, "acme", cutoff.Add(h.svc.cfg.Retention))
	h.waitRecords("acme", 7-keep)
	res := h.verify("acme")
	if !res.OK || res.FirstSeq != recs[keep].Seq || res.Anchor != recs[keep-1].Hash || !res.AnchorCheckpoint {
		t.Fatalf("after partial expiry: %+v", res)
	}
	// Deleting the oldest remaining record is not mistaken for expiry.
	st, _ := h.srv.JS.Stream(ctx, contract.StreamAudit)
	if err := st.DeleteMsg(ctx, uint64(keep+1)); err != nil {
		t.Fatal(err)
	}
	if res := h.verify("acme"); res.OK || res.Broken.Seq != recs[keep].Seq {
		t.Fatalf("oldest remaining record deleted: %+v", res)
	}

	h.svc.purgeTenant(ctx, "acme", time.Now().Add(h.svc.cfg.Retention+time.Hour))
	h.waitRecords("acme", 0)
	if cp, _ := h.svc.checkpoint(ctx, "acme"); cp.Seq != 7 || cp.Hash != recs[6].Hash {
		t.Errorf("checkpoint after full expiry: %+v", cp)
	}
	if res := h.verify("acme"); !res.OK || res.Records != 0 {
		t.Fatalf("after full expiry: %+v", res)
	}
	h.attempt(payload.Attempt{Tenant: "acme", AttemptID: "att-late", SubscriptionID: "sub-1", Attempt: 1, Outcome: payload.OutcomeDelivered})
	h.waitRecords("acme", 1)
	late := h.records("acme")[0]
	if late.Seq != 8 || late.PrevHash != recs[6].Hash {
		t.Errorf("append after expiry: seq %d prevHash %s, want 8 and %s", late.Seq, late.PrevHash, recs[6].Hash)
	}
	if res := h.verify("acme"); !res.OK || res.FirstSeq != 8 {
		t.Errorf("verify after expiry and append: %+v", res)
	}
}

// FuzzScrubPrefilter: skipping a secret shape whose necessary substring is
// absent never changes what scrub returns.
func FuzzScrubPrefilter(f *testing.F) {
	for _, s := range []string{"Authorization: Bearer abc.def", "token=abc", "whsec_abcdefgh", "v1,abcdefghij",
		"v1a,abcdefghij", "basic\tdXNlcjpwYXNz", `{"password":"x"}`, "https://u:p@h.example/a?b=c", "plain", "sk_live_123456 ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := urlInText.ReplaceAllStringFunc(s, cleanURL)
		for i, re := range secretShape {
			if i == len(secretShape)-1 {
				want = re.ReplaceAllString(want, "${1}[redacted]")
				continue
			}
			want = re.ReplaceAllString(want, "[redacted]")
		}
		if got := scrub(s); got != want {
			t.Fatalf("scrub(%q) = %q, without prefilters %q", s, got, want)
		}
	})
}

// pairList shows a page of deliveries as "notification/subscription state
// [outcome status class, ...]".
func pairList(p DeliveryPage) string {
	var out []string
	for _, d := range p.Items {
		var as []string
		for _, a := range d.Attempts {
			as = append(as, strings.TrimSpace(fmt.Sprintf("%s %d %s", a.Outcome, a.StatusCode, a.ErrorClass)))
		}
		out = append(out, fmt.Sprintf("%s/%s %s [%s]", d.NotificationID, d.SubscriptionID, d.State, strings.Join(as, ", ")))
	}
	return strings.Join(out, "; ")
}

func (h *harness) deliveryPages(path string) string {
	h.t.Helper()
	var ids []string
	cursor := ""
	for i := 0; i < 20; i++ {
		var p DeliveryPage
		u := path
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		if code := h.get(u, adminToken, &p); code != http.StatusOK {
			h.t.Fatalf("%s: %d", u, code)
		}
		for _, d := range p.Items {
			ids = append(ids, d.NotificationID+"/"+d.SubscriptionID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	return strings.Join(ids, ",")
}

// ?outcome= takes the states users mean: failed finds a pair that is still
// being retried; an unknown value is a 400 naming the accepted ones.
func TestDeliveriesOutcome(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	base := payload.Attempt{Tenant: "acme", NotificationType: "alert.opened", URL: "https://hooks.example/in", StartedAt: time.Now().UTC()}
	mk := func(id, notif string, n int, outcome string, status int) payload.Attempt {
		a := base
		a.AttemptID, a.NotificationID, a.SubscriptionID, a.WebhookID, a.Attempt, a.Outcome, a.StatusCode = id, notif, "sub-1", "whk-"+notif, n, outcome, status
		if status >= 500 {
			a.ErrorClass, a.Error = payload.ErrClassHTTPStatus, "endpoint answered 503"
		}
		return a
	}
	h.attempt(mk("a1", "n-retrying", 1, payload.OutcomeRetrying, 503))
	h.attempt(mk("a2", "n-ok", 1, payload.OutcomeDelivered, 200))
	h.attempt(mk("a3", "n-dead", 1, payload.OutcomeDeadLettered, 503))
	h.waitRecords("acme", 3)

	for q, want := range map[string]string{
		"failed":        "n-dead/sub-1 dead_lettered [dead_lettered 503 http_status]; n-retrying/sub-1 retrying [retrying 503 http_status]",
		"retrying":      "n-retrying/sub-1 retrying [retrying 503 http_status]",
		"dead_lettered": "n-dead/sub-1 dead_lettered [dead_lettered 503 http_status]",
		"delivered":     "n-ok/sub-1 delivered [delivered 200]",
	} {
		var p DeliveryPage
		if code := h.get("/v1/tenants/acme/deliveries?outcome="+q, adminToken, &p); code != http.StatusOK {
			t.Fatalf("outcome=%s: %d", q, code)
		}
		if got := pairList(p); got != want {
			t.Errorf("outcome=%s: %s, want %s", q, got, want)
		}
	}
	var rp Page
	h.get("/v1/tenants/acme/audit?outcome=failed", adminToken, &rp)
	if ids := sortedIDs(rp); ids != "a1,a3" {
		t.Errorf("audit outcome=failed: %s", ids)
	}

	for _, path := range []string{"/v1/tenants/acme/deliveries?outcome=bogus", "/v1/tenants/acme/audit?outcome=bogus"} {
		req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(string(body), `"outcome"`) || !strings.Contains(string(body), "delivered, retrying, failed, dead_lettered") {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}

// Verifying the trail of a tenant that has none is a 404, not "ok, 0 records".
func TestVerifyUnknownTenant(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if code := h.get("/v1/tenants/nosuch/audit/verify", adminToken, nil); code != http.StatusNotFound {
		t.Errorf("verify of an unknown tenant: %d", code)
	}
	h.attempt(payload.Attempt{Tenant: "acme", AttemptID: "a1", NotificationID: "n1", SubscriptionID: "s1", Attempt: 1, Outcome: payload.OutcomeDelivered, StartedAt: time.Now()})
	h.waitRecords("acme", 1)
	if res := h.verify("acme"); !res.OK || res.Records != 1 {
		t.Errorf("verify acme: %+v", res)
	}
}

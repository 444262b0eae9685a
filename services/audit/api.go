package audit

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/auditchain"
	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// Routes registers the delivery log, the audit query and verify.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.Handle("GET /v1/tenants/{tenant}/deliveries", s.guard(s.serveDeliveries))
	mux.Handle("GET /v1/tenants/{tenant}/audit", s.guard(s.serveAudit))
	mux.Handle("GET /v1/tenants/{tenant}/audit/verify", s.guard(s.serveVerify))
	mux.Handle("GET /v1/tenants/{tenant}/notifications/{id}", s.guard(s.serveNotification))
}

func (s *Service) guard(h func(w http.ResponseWriter, r *http.Request, tenant string)) http.Handler {
	return apiauth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := r.PathValue("tenant")
		if !apiauth.ForTenant(w, r, tenant) {
			return
		}
		if err := contract.ValidateToken(tenant); err != nil {
			problem.Write(w, r, problem.Invalid("invalid tenant id", problem.FieldError{Pointer: "tenant", Detail: err.Error()}))
			return
		}
		if s.Ready() != nil {
			p := problem.New(http.StatusServiceUnavailable, "audit trail is still loading")
			p.RetryAfter = 2 * time.Second
			problem.Write(w, r, p)
			return
		}
		h(w, r, tenant)
	}), s.deps.Auth)
}

// query is a parsed audit or deliveries request.
type query struct {
	Notification, Subscription, Event, Subject, Kind, Outcome string
	Since, Until                                              time.Time
	Cursor                                                    uint64
	Limit                                                     int
	Desc                                                      bool
}

const (
	defaultLimit = 50
	maxLimit     = 500
	// maxScan bounds the records fetched for one page, so that a filter
	// that matches nothing cannot make one request read the whole trail.
	maxScan = 20000
)

func parseQuery(r *http.Request, desc bool) (query, *problem.Problem) {
	v := r.URL.Query()
	q := query{
		Notification: v.Get("notification"), Subscription: v.Get("subscription"),
		Event: v.Get("event"), Subject: v.Get("subject"), Kind: v.Get("kind"),
		Outcome: v.Get("outcome"), Limit: defaultLimit, Desc: desc,
	}
	var errs []problem.FieldError
	if o := v.Get("order"); o != "" {
		switch o {
		case "asc":
			q.Desc = false
		case "desc":
			q.Desc = true
		default:
			errs = append(errs, problem.FieldError{Pointer: "order", Detail: "want asc or desc"})
		}
	}
	if q.Outcome != "" && !validOutcome(q.Outcome) {
		errs = append(errs, problem.FieldError{Pointer: "outcome", Detail: "want " + strings.Join(outcomes, ", ")})
	}
	if q.Kind != "" && kindCode(q.Kind) == 0 {
		errs = append(errs, problem.FieldError{Pointer: "kind", Detail: "want event, notification, attempt or change"})
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				errs = append(errs, problem.FieldError{Pointer: p.name, Detail: "want an RFC 3339 time"})
			}
			*p.dst = t
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			errs = append(errs, problem.FieldError{Pointer: "limit", Detail: "want 1 to " + strconv.Itoa(maxLimit)})
		}
		q.Limit = n
	}
	if s := v.Get("cursor"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			errs = append(errs, problem.FieldError{Pointer: "cursor", Detail: "want the next_cursor of a previous page"})
		}
		q.Cursor = n
	}
	if len(errs) > 0 {
		return q, problem.Invalid("invalid query parameters", errs...)
	}
	return q, nil
}

// Page is one page of records. NextCursor is empty on the last page.
type Page struct {
	Items      []auditchain.Record `json:"items"`
	NextCursor string              `json:"next_cursor,omitempty"`
}

func (s *Service) serveAudit(w http.ResponseWriter, r *http.Request, tenant string) {
	q, p := parseQuery(r, false)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	s.serveQuery(w, r, tenant, q)
}

func (s *Service) serveQuery(w http.ResponseWriter, r *http.Request, tenant string, q query) {
	page, err := s.Query(r.Context(), tenant, q)
	if err != nil {
		s.unavailable(w, r, "audit query failed", tenant, err)
		return
	}
	writeJSON(w, page)
}

// unavailable logs a failed read of the trail and answers 503 with a
// Retry-After: the stream or the bus is briefly away.
func (s *Service) unavailable(w http.ResponseWriter, r *http.Request, what, tenant string, err error) {
	s.log.ErrorContext(r.Context(), what, "tenant", tenant, "error", err)
	pr := problem.New(http.StatusServiceUnavailable, "audit trail unavailable, try again")
	pr.RetryAfter = time.Second
	problem.Write(w, r, pr)
}

// Query answers q from the index and the stream. Pages run newest first
// when q.Desc; the cursor is the last AUDIT sequence a page examined.
func (s *Service) Query(ctx context.Context, tenant string, q query) (Page, error) {
	cands := s.idx.candidates(tenant, q)
	page := Page{Items: []auditchain.Record{}}
	kind := kindCode(q.Kind)
	since, until := q.Since.UnixNano(), q.Until.UnixNano()
	n, scanned := len(cands), 0
	var last uint64
	for i := 0; i < n; i++ {
		e := cands[i]
		if q.Desc {
			e = cands[n-1-i]
		}
		if q.Cursor != 0 && ((q.Desc && e.seq >= q.Cursor) || (!q.Desc && e.seq <= q.Cursor)) {
			continue
		}
		if (kind != 0 && e.kind != kind) || (!q.Since.IsZero() && e.at < since) || (!q.Until.IsZero() && e.at >= until) {
			continue
		}
		if len(page.Items) == q.Limit || scanned == maxScan {
			page.NextCursor = strconv.FormatUint(last, 10)
			break
		}
		scanned++
		last = e.seq
		rec, err := s.fetch(ctx, e.seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // expired or deleted
		}
		if err != nil {
			return page, err
		}
		if rec.Tenant == tenant && matches(rec, q) {
			page.Items = append(page.Items, rec)
		}
	}
	return page, nil
}

// matches applies the filters the index did not. A subscription filter
// keeps records that name no subscription (the event and its
// notifications) when another filter picked the story, so that
// ?event=X&subscription=Y shows what X caused and every attempt to Y.
func matches(r auditchain.Record, q query) bool {
	if q.Notification != "" && r.ID != q.Notification && r.NotificationID != q.Notification {
		return false
	}
	if q.Subject != "" && r.Subject != q.Subject {
		return false
	}
	if q.Subscription != "" && r.SubscriptionID != q.Subscription {
		story := q.Event != "" || q.Notification != "" || q.Subject != ""
		if !story || r.SubscriptionID != "" {
			return false
		}
	}
	if q.Outcome != "" && !outcomeMatches(q.Outcome, r.Outcome) {
		return false
	}
	return true
}

func (s *Service) fetch(ctx context.Context, seq uint64) (auditchain.Record, error) {
	var r auditchain.Record
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return r, jetstream.ErrMsgNotFound // not a record: verify reports it
	}
	return r, nil
}

func (s *Service) serveVerify(w http.ResponseWriter, r *http.Request, tenant string) {
	known, err := s.hasTrail(r.Context(), tenant)
	if err == nil && !known {
		problem.Write(w, r, problem.New(http.StatusNotFound, "no audit trail for tenant "+tenant))
		return
	}
	res, err := s.Verify(r.Context(), tenant)
	if err != nil {
		s.unavailable(w, r, "audit verify failed", tenant, err)
		return
	}
	writeJSON(w, res)
}

// hasTrail reports whether the tenant has ever had a record: one in the
// index, or a head or retention checkpoint in audit-heads. Every tenant
// has one from its creation on (the registry's change record).
func (s *Service) hasTrail(ctx context.Context, tenant string) (bool, error) {
	if len(s.idx.candidates(tenant, query{})) > 0 {
		return true, nil
	}
	for _, key := range []string{tenant, checkpointKey(tenant)} {
		_, err := s.heads.Get(ctx, key)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, err
		}
	}
	return false, nil
}

// Verify walks the tenant's chain as stored, from its first remaining
// record (whose prevHash is the trusted anchor once older records have
// expired) to the head recorded in audit-heads.
func (s *Service) Verify(ctx context.Context, tenant string) (auditchain.Result, error) {
	v := auditchain.Verifier{Tenant: tenant}
	cp, err := s.checkpoint(ctx, tenant)
	if err != nil {
		return v.Result(), err
	}
	v.Checkpoint(cp.Seq, cp.Hash)
	var kh head
	if e, err := s.heads.Get(ctx, tenant); err == nil {
		_ = json.Unmarshal(e.Value(), &kh)
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return v.Result(), err
	}
	subj := contract.AuditSubject(tenant)
	last, err := s.stream.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		if kh.Seq > 0 && kh.StreamSeq != 0 {
			_ = v.ExpectHead(kh.Seq, kh.Hash)
		}
		return v.Result(), nil
	}
	if err != nil {
		return v.Result(), err
	}
	c, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subj}, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return v.Result(), err
	}
	for {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return v.Result(), err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return v.Result(), err
			}
			if meta.Sequence.Stream > last.Sequence {
				continue // appended during the walk
			}
			if v.Add(m.Data()) != nil {
				return v.Result(), nil
			}
			if meta.Sequence.Stream == last.Sequence {
				// The KV head lags the stream by at most the record in flight.
				if kh.StreamSeq != 0 {
					_ = v.ExpectHead(kh.Seq, "")
				}
				return v.Result(), nil
			}
		}
		if err := batch.Error(); err != nil {
			return v.Result(), err
		}
		if got == 0 {
			return v.Result(), errors.New("audit verify: stream ended before its last record")
		}
	}
}

// purgeLoop enforces per-tenant retention. Purging removes a prefix of the
// tenant's chain; the first kept record's prevHash becomes the anchor
// Verify starts from.
func (s *Service) purgeLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.purge(ctx, time.Now())
		}
	}
}

func (s *Service) purge(ctx context.Context, now time.Time) {
	for _, tenant := range s.idx.tenantNames() {
		s.purgeTenant(ctx, tenant, now)
	}
}

func (s *Service) purgeTenant(ctx context.Context, tenant string, now time.Time) {
	l := s.tenantLock(tenant)
	l.Lock()
	defer l.Unlock()
	keepFrom, dropped := s.idx.expireBefore(tenant, now.Add(-s.cfg.retention(tenant)))
	if dropped == 0 {
		return
	}
	// The last record to go becomes the retention checkpoint, kept in
	// audit-heads, so that Verify can tell expiry from deletion.
	last, err := s.fetch(ctx, keepFrom-1)
	if err != nil {
		s.log.WarnContext(ctx, "audit purge skipped: last expiring record unreadable", "tenant", tenant, "error", err)
		return
	}
	if err := s.storeCheckpoint(ctx, tenant, head{Seq: last.Seq, Hash: last.Hash}); err != nil {
		s.log.WarnContext(ctx, "audit purge skipped: checkpoint not stored", "tenant", tenant, "error", err)
		return
	}
	// Purge below keepFrom only, so records not yet indexed (appended by
	// another instance a moment ago) are never removed by mistake.
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(contract.AuditSubject(tenant)), jetstream.WithPurgeSequence(keepFrom)); err != nil {
		s.log.WarnContext(ctx, "audit purge failed", "tenant", tenant, "error", err)
		return
	}
	// Re-read the head: if nothing is left on the subject, the head keeps
	// seq and hash as the anchor of the next record and expects no record.
	if _, err := s.loadHead(ctx, tenant, true); err != nil {
		s.log.WarnContext(ctx, "audit head not reloaded after purge", "tenant", tenant, "error", err)
	}
	s.log.InfoContext(ctx, "audit records expired", "tenant", tenant, "records", dropped)
}

func checkpointKey(tenant string) string { return tenant + ".checkpoint" }

func (s *Service) storeCheckpoint(ctx context.Context, tenant string, cp head) error {
	if cur, err := s.checkpoint(ctx, tenant); err != nil {
		return err
	} else if cur.Seq >= cp.Seq {
		return nil
	}
	b, _ := json.Marshal(cp)
	_, err := s.heads.Put(ctx, checkpointKey(tenant), b)
	return err
}

// checkpoint returns the retention checkpoint; Seq 0 when none.
func (s *Service) checkpoint(ctx context.Context, tenant string) (head, error) {
	var cp head
	e, err := s.heads.Get(ctx, checkpointKey(tenant))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return cp, nil
	}
	if err != nil {
		return cp, err
	}
	return cp, json.Unmarshal(e.Value(), &cp)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

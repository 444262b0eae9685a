package audit

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/auditchain"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/problem"
)

// Delivery is one pair (a notification for a subscription) as the delivery
// log shows it: its state and its attempts, oldest first. The hash-chained
// records behind it are at Links.Audit.
type Delivery struct {
	// Pair is the pair's webhook-id, which POST .../deliveries/{pair}/retry takes.
	Pair             string            `json:"pair"`
	SubscriptionID   string            `json:"subscriptionId"`
	NotificationID   string            `json:"notificationId"`
	NotificationType string            `json:"notificationType"`
	EventIDs         []string          `json:"eventIds,omitempty"`
	URL              string            `json:"url,omitempty"`
	State            string            `json:"state"`
	Attempts         []DeliveryAttempt `json:"attempts"`
	Links            DeliveryLinks     `json:"links"`
}

// DeliveryAttempt is one attempt of a pair, or (attempt 0,
// replay_requested) the request of a replay.
type DeliveryAttempt struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	Outcome    string    `json:"outcome"`
	StatusCode int       `json:"statusCode,omitempty"`
	LatencyMs  float64   `json:"latencyMs"`
	ErrorClass string    `json:"errorClass,omitempty"`
	Error      string    `json:"error,omitempty"`
	Response   string    `json:"responseSnippet,omitempty"`
	Replay     bool      `json:"replay,omitempty"`
}

// DeliveryLinks points at the pair's audit records.
type DeliveryLinks struct {
	Audit string `json:"audit"`
}

// DeliveryPage is one page of the delivery log.
type DeliveryPage struct {
	Items      []Delivery `json:"items"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// outcomes are the values ?outcome= accepts: the outcomes of ATTEMPTS
// records, which are also the states of a delivery (its latest record).
// "failed" stands for every failure, so a pair that is still being retried
// is found with it too.
var outcomes = []string{payload.OutcomeDelivered, payload.OutcomeRetrying, payload.OutcomeFailed,
	payload.OutcomeDeadLettered, payload.OutcomeReplayRequested}

func validOutcome(o string) bool {
	for _, v := range outcomes {
		if v == o {
			return true
		}
	}
	return false
}

// outcomeMatches reports whether an attempt outcome (or a delivery state)
// got is what a ?outcome=want asks for.
func outcomeMatches(want, got string) bool {
	if want == payload.OutcomeFailed {
		return got == payload.OutcomeRetrying || got == payload.OutcomeFailed || got == payload.OutcomeDeadLettered
	}
	return want == got
}

func (s *Service) serveDeliveries(w http.ResponseWriter, r *http.Request, tenant string) {
	q, p := parseQuery(r, true)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	if q.Kind != "" && q.Kind != auditchain.KindAttempt {
		problem.Write(w, r, problem.Invalid("invalid query parameters", problem.FieldError{Pointer: "kind", Detail: "the delivery log holds attempts only"}))
		return
	}
	q.Kind = auditchain.KindAttempt
	page, err := s.Deliveries(r.Context(), tenant, q)
	if err != nil {
		s.unavailable(w, r, "delivery query failed", tenant, err)
		return
	}
	writeJSON(w, page)
}

// Deliveries answers q with pairs. A pair is listed once, at the position
// of its latest attempt record, so pages never repeat a pair; since, until
// and outcome apply to that latest record (the pair's state). The cursor
// is the last AUDIT sequence a page examined, as for Query.
func (s *Service) Deliveries(ctx context.Context, tenant string, q query) (DeliveryPage, error) {
	cands := s.idx.candidates(tenant, q)
	page := DeliveryPage{Items: []Delivery{}}
	kind := kindCode(auditchain.KindAttempt)
	since, until := q.Since.UnixNano(), q.Until.UnixNano()
	outcome := q.Outcome
	q.Outcome = "" // applies to the pair's state, below
	latest := map[[2]string]uint64{}
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
		if e.kind != kind || (!q.Since.IsZero() && e.at < since) || (!q.Until.IsZero() && e.at >= until) {
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
			continue
		}
		if err != nil {
			return page, err
		}
		if rec.Tenant != tenant || !matches(rec, q) {
			continue
		}
		key := [2]string{rec.NotificationID, rec.SubscriptionID}
		if seq, ok := latest[key]; ok && seq != e.seq {
			continue // listed at its latest record
		}
		d, seq, err := s.delivery(ctx, tenant, rec)
		if err != nil {
			return page, err
		}
		latest[key] = seq
		if seq != e.seq || (outcome != "" && !outcomeMatches(outcome, d.State)) {
			continue
		}
		page.Items = append(page.Items, d)
	}
	return page, nil
}

// delivery gathers every attempt record of rec's pair and returns the pair
// and the AUDIT sequence of its latest record.
func (s *Service) delivery(ctx context.Context, tenant string, rec auditchain.Record) (Delivery, uint64, error) {
	d := Delivery{SubscriptionID: rec.SubscriptionID, NotificationID: rec.NotificationID,
		NotificationType: rec.NotificationType, Attempts: []DeliveryAttempt{}}
	var latest uint64
	original := false
	for _, e := range s.idx.pairEntries(tenant, rec.NotificationID, rec.SubscriptionID) {
		r, err := s.fetch(ctx, e.seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return d, 0, err
		}
		if r.Tenant != tenant || r.NotificationID != rec.NotificationID || r.SubscriptionID != rec.SubscriptionID {
			continue
		}
		latest = e.seq
		// The pair's id is the webhook-id of its first run; a replay may
		// send under another.
		if d.Pair == "" || (!r.Replay && !original) {
			d.Pair, original = r.WebhookID, !r.Replay
		}
		d.URL, d.State, d.EventIDs = r.URL, r.Outcome, r.EventIDs
		d.Attempts = append(d.Attempts, DeliveryAttempt{Attempt: r.Attempt, At: r.At, Outcome: r.Outcome,
			StatusCode: r.StatusCode, LatencyMs: r.LatencyMs, ErrorClass: r.ErrorClass, Error: r.Error,
			Response: r.ResponseSnippet, Replay: r.Replay})
	}
	d.Links.Audit = "/v1/tenants/" + url.PathEscape(tenant) + "/audit?" +
		url.Values{"notification": {d.NotificationID}, "subscription": {d.SubscriptionID}}.Encode()
	return d, latest, nil
}

// pairEntries returns the attempt entries of one pair, in stream order:
// the notification's postings that are also the subscription's. The
// notification's are few (its fan-out times the attempts), so each is
// looked up in the subscription's, however long that list is.
func (x *index) pairEntries(tenant, notification, subscription string) []entry {
	x.mu.RLock()
	defer x.mu.RUnlock()
	ti, ok := x.tenants[tenant]
	if !ok {
		return nil
	}
	attempt := kindCode(auditchain.KindAttempt)
	bySub := ti.keys["s:"+subscription]
	var out []entry
	for _, e := range ti.keys["n:"+notification] {
		if e.kind != attempt {
			continue
		}
		i := sort.Search(len(bySub), func(i int) bool { return bySub[i].seq >= e.seq })
		if i < len(bySub) && bySub[i].seq == e.seq {
			out = append(out, e)
		}
	}
	return out
}

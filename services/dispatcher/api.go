package dispatcher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// maxReplayPairs bounds one replay request.
const maxReplayPairs = 10000

// Routes registers the replay API.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.Handle("POST /v1/tenants/{tenant}/subscriptions/{id}/replay", apiauth.Require(http.HandlerFunc(s.handleReplay), s.auth))
	mux.Handle("POST /v1/tenants/{tenant}/deliveries/{pair}/retry", apiauth.Require(http.HandlerFunc(s.handleRetry), s.auth))
}

func (s *Service) notReady(w http.ResponseWriter, r *http.Request) bool {
	if s.Ready() == nil {
		return false
	}
	p := problem.New(http.StatusServiceUnavailable, "the dispatcher is starting")
	p.RetryAfter = 2 * time.Second
	problem.Write(w, r, p)
	return true
}

func newReplayID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "r" + hex.EncodeToString(b)
}

// replayAnswer is the body of a 202 to a replay or retry request.
type replayAnswer struct {
	Replay string   `json:"replay"`
	Pairs  int      `json:"pairs"`
	IDs    []string `json:"webhookIds,omitempty"`
}

// handleRetry re-sends one failing pair: dead-lettered, or retrying (the
// replay supersedes its scheduled retry, which is then dropped). pair is the
// webhook-id ("msg_<hex>") or its hex part.
func (s *Service) handleRetry(w http.ResponseWriter, r *http.Request) {
	tenant, key := r.PathValue("tenant"), strings.TrimPrefix(r.PathValue("pair"), "msg_")
	if !apiauth.ForTenant(w, r, tenant) || s.notReady(w, r) {
		return
	}
	st, rev, err := s.loadState(r.Context(), key)
	if err != nil || st == nil || st.Tenant != tenant {
		problem.Write(w, r, problem.New(http.StatusNotFound, "no delivery "+r.PathValue("pair")+" for tenant "+tenant))
		return
	}
	if !failing(st, time.Now()) {
		problem.Write(w, r, problem.New(http.StatusConflict, "delivery is "+st.State+"; only retrying or dead-lettered deliveries can be retried"))
		return
	}
	sub, ok := s.index.get(st.Tenant, st.SubscriptionID)
	if !ok {
		problem.Write(w, r, problem.New(http.StatusNotFound, "subscription "+st.SubscriptionID+" no longer exists"))
		return
	}
	raw, ntype, err := s.readNotification(r.Context(), st.NotificationSeq, st.NotificationID)
	if err != nil {
		problem.Write(w, r, problem.New(http.StatusGone, "the notification is no longer stored: "+err.Error()))
		return
	}
	id := newReplayID()
	d := payload.Delivery{Tenant: st.Tenant, SubscriptionID: st.SubscriptionID, NotificationTenant: st.NotificationTenant,
		NotificationID: st.NotificationID, NotificationType: ntype, NotificationSeq: st.NotificationSeq, Notification: raw, Attempt: 1, Replay: id}
	if err := s.replayPair(r.Context(), d, sub, st, rev, principal(r)); err != nil {
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, "could not queue the retry: "+err.Error()))
		return
	}
	writeJSON(w, http.StatusAccepted, replayAnswer{Replay: id, Pairs: 1, IDs: []string{attemptWebhookID(key, id)}})
}

type replayRequest struct {
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until"`
	OnlyFailed bool      `json:"only_failed"`
}

// failing reports whether a pair is retrying or dead-lettered: what
// only_failed replays and what a retry accepts. A pair in flight is not
// (its attempt is running), unless its lease ended with its holder.
func failing(st *pairState, now time.Time) bool {
	switch st.State {
	case stateRetryScheduled, stateDeadLettered:
		return true
	case stateInFlight:
		return !now.Before(st.LeaseUntil)
	}
	return false
}

// handleReplay re-sends what was meant for a subscription: every pair of a
// notification stored between since and until that the subscription's
// event patterns and filter take, or with only_failed just the retrying
// and dead-lettered ones. since defaults to, and is never earlier than,
// the subscription's creation: older notifications were never its. A pair
// whose attempt is running now is left alone; a retrying pair is sent now,
// and its scheduled retry is dropped.
func (s *Service) handleReplay(w http.ResponseWriter, r *http.Request) {
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	if !apiauth.ForTenant(w, r, tenant) || s.notReady(w, r) {
		return
	}
	var req replayRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		problem.Write(w, r, problem.Invalid("body must be JSON {since, until, only_failed}", problem.FieldError{Pointer: "/", Detail: err.Error()}))
		return
	}
	sub, ok := s.index.get(tenant, id)
	if !ok {
		problem.Write(w, r, problem.New(http.StatusNotFound, "no subscription "+id+" for tenant "+tenant))
		return
	}
	var ferrs []problem.FieldError
	if req.Since.Before(sub.CreatedAt) {
		req.Since = sub.CreatedAt
	}
	if req.Since.IsZero() {
		ferrs = append(ferrs, problem.FieldError{Pointer: "/since", Detail: "required for a subscription without a creation time, RFC 3339 time"})
	}
	if req.Until.IsZero() {
		req.Until = time.Now()
	}
	if req.Until.Before(req.Since) {
		ferrs = append(ferrs, problem.FieldError{Pointer: "/until", Detail: "must not be before since"})
	}
	if len(ferrs) > 0 {
		problem.Write(w, r, problem.Invalid("invalid replay range", ferrs...))
		return
	}
	if !sub.Active() {
		problem.Write(w, r, problem.New(http.StatusConflict, "subscription is "+sub.Status))
		return
	}
	replay := newReplayID()
	n, err := s.replayRange(r.Context(), sub, req, replay, principal(r))
	if err != nil {
		problem.Write(w, r, problem.New(http.StatusServiceUnavailable, fmt.Sprintf("replay stopped after %d pairs: %v", n, err)))
		return
	}
	writeJSON(w, http.StatusAccepted, replayAnswer{Replay: replay, Pairs: n})
}

func (s *Service) replayRange(ctx context.Context, sub subscription.Subscription, req replayRequest, replay, who string) (int, error) {
	filter := contract.TenantNotificationsFilter(sub.Tenant)
	if sub.IncludeSubaccounts {
		filter = contract.NotificationsWildcard
	}
	since := req.Since
	cons, err := s.js.OrderedConsumer(ctx, contract.StreamNotifications, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for n < maxReplayPairs {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return n, err
		}
		got, last := 0, false
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			if meta.Timestamp.After(req.Until) || meta.NumPending == 0 {
				last = true
			}
			if meta.Timestamp.After(req.Until) {
				break
			}
			done, err := s.replayOne(ctx, msg, meta.Sequence.Stream, sub, req.OnlyFailed, replay, who)
			if err != nil {
				return n, err
			}
			if done {
				n++
			}
		}
		if got == 0 || last {
			return n, nil
		}
	}
	return n, nil
}

func (s *Service) replayOne(ctx context.Context, msg jetstream.Msg, seq uint64, sub subscription.Subscription, onlyFailed bool, replay, who string) (bool, error) {
	n, err := cenats.Decode(msg.Headers(), msg.Data())
	if err != nil {
		return false, nil
	}
	tenant, _ := n.Extensions()["tenant"].(string)
	if tenant == "" {
		tenant, _ = contract.TenantFromSubject(msg.Subject())
	}
	if !sub.MatchesType(n.Type()) || (tenant != sub.Tenant && !s.index.isAncestor(sub.Tenant, tenant)) {
		return false, nil
	}
	if sub.Filter != "" {
		var data any
		if len(n.Data()) > 0 {
			_ = json.Unmarshal(n.Data(), &data) // non-JSON data: filters over data do not match, as in plan
		}
		if !s.filters.matches(sub.Filter, n, tenant, data) {
			return false, nil
		}
	}
	key := pairKey(n.ID(), sub.ID)
	st, rev, err := s.loadState(ctx, key)
	if err != nil {
		return false, err
	}
	now := time.Now()
	switch {
	case st != nil && st.State == stateInFlight && now.Before(st.LeaseUntil):
		return false, nil // its attempt is running
	case onlyFailed && (st == nil || !failing(st, now)):
		return false, nil
	}
	raw, err := json.Marshal(n)
	if err != nil {
		return false, nil
	}
	d := payload.Delivery{Tenant: sub.Tenant, SubscriptionID: sub.ID, NotificationTenant: tenant, NotificationID: n.ID(),
		NotificationType: n.Type(), NotificationSeq: seq, Notification: raw, Attempt: 1, Replay: replay}
	return true, s.replayPair(ctx, d, sub, st, rev, who)
}

// replayPair resets the pair's record to the replay (so every message of
// an earlier run is now stale), records the request in ATTEMPTS and queues
// the pair.
func (s *Service) replayPair(ctx context.Context, d payload.Delivery, sub subscription.Subscription, st *pairState, rev uint64, who string) error {
	key := pairKey(d.NotificationID, d.SubscriptionID)
	rec := pairState{State: stateRetryScheduled, Attempts: 0, Replay: d.Replay, Tenant: d.Tenant, SubscriptionID: d.SubscriptionID,
		NotificationID: d.NotificationID, NotificationTenant: d.NotificationTenant, NotificationSeq: d.NotificationSeq}
	if _, err := s.putState(ctx, key, rev, rec); err != nil {
		return fmt.Errorf("reset delivery state: %w", err)
	}
	a := s.attemptRecord(d, sub, result{}, payload.OutcomeReplayRequested, time.Now(), nil)
	a.Attempt = 0
	a.Error = "replay requested by " + who
	if err := s.publishAttempt(ctx, key+":0"+replaySuffix(d.Replay), a); err != nil {
		return err
	}
	return s.publishDelivery(ctx, d, key+":1"+replaySuffix(d.Replay))
}

func (s *Service) readNotification(ctx context.Context, seq uint64, id string) (json.RawMessage, string, error) {
	if seq == 0 {
		return nil, "", errors.New("its position is unknown")
	}
	st, err := s.js.Stream(ctx, contract.StreamNotifications)
	if err != nil {
		return nil, "", err
	}
	m, err := st.GetMsg(ctx, seq)
	if err != nil {
		return nil, "", err
	}
	e, err := cenats.Decode(m.Header, m.Data)
	if err != nil || e.ID() != id {
		return nil, "", errors.New("stored message does not match")
	}
	raw, err := json.Marshal(e)
	return raw, e.Type(), err
}

func principal(r *http.Request) string {
	if p, ok := apiauth.FromContext(r.Context()); ok && p.Actor != "" {
		return p.Actor
	}
	return "unknown"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

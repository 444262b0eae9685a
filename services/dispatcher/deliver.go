package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/cenats"
	"github.com/heraldhq/herald/pkg/contract"
	"github.com/heraldhq/herald/pkg/payload"
	"github.com/heraldhq/herald/pkg/subscription"
)

// Pair states in the delivery-state bucket.
const (
	stateInFlight       = "in_flight"
	stateRetryScheduled = "retrying"
	stateDelivered      = "delivered"
	stateDeadLettered   = "dead_lettered"
)

// pairState is the delivery-state record of one pair. Attempts counts the
// attempts whose outcome is recorded; the attempt in flight is Attempts+1.
type pairState struct {
	State          string    `json:"state"`
	Owner          string    `json:"owner,omitempty"`
	LeaseUntil     time.Time `json:"lease_until,omitzero"`
	Attempts       int       `json:"attempts"`
	Replay         string    `json:"replay,omitempty"`
	Tenant         string    `json:"tenant"`
	SubscriptionID string    `json:"subscription_id"`
	NotificationID string    `json:"notification_id"`
	// NotificationTenant and NotificationSeq locate the notification for
	// a retry of this pair.
	NotificationTenant string     `json:"notification_tenant"`
	NotificationSeq    uint64     `json:"notification_seq,omitempty"`
	NextAt             *time.Time `json:"next_at,omitempty"`
	LastStatus         int        `json:"last_status,omitempty"`
	LastError          string     `json:"last_error,omitempty"`
	UpdatedAt          time.Time  `json:"updated_at"`
}

// pairKey identifies a pair: its delivery-state key, its schedule subject
// token and (prefixed "msg_") its stable webhook-id.
func pairKey(notificationID, subscriptionID string) string {
	h := sha256.Sum256([]byte(notificationID + ":" + subscriptionID))
	return hex.EncodeToString(h[:])
}

func webhookID(key string) string { return "msg_" + key }

func (s *Service) loadState(ctx context.Context, key string) (*pairState, uint64, error) {
	e, err := s.state.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read delivery state: %w", err)
	}
	var st pairState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, bus.Permanent(fmt.Errorf("corrupt delivery state %s: %w", key, err))
	}
	return &st, e.Revision(), nil
}

// putState writes st with Create (rev 0) or a CAS Update.
func (s *Service) putState(ctx context.Context, key string, rev uint64, st pairState) (uint64, error) {
	st.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		return s.state.Create(ctx, key, b)
	}
	return s.state.Update(ctx, key, b, rev)
}

// stateStream is the stream behind the delivery-state bucket, which the
// records Batcher writes.
const stateStream = "KV_" + contract.BucketDeliveryState

// writeRecord stores st as the pair's record through the records Batcher:
// a create when rev is 0, else a compare-and-set on rev. It does not wait:
// the record is the dispatcher's view of the pair, not its proof. The
// proof is the ATTEMPTS record, stored before the message is acked; a
// record lost with a crash only means that a redelivered message is posted
// again (same webhook-id) and its ATTEMPTS record dropped as a duplicate.
// A write that loses its compare-and-set (a replay reset the pair, or a
// takeover) is dropped: the newer writer owns the record.
func (s *Service) writeRecord(ctx context.Context, key string, rev uint64, st pairState) {
	st.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		s.log.ErrorContext(ctx, "encode pair record", "pair", key, "error", err)
		return
	}
	m := nats.NewMsg("$KV." + contract.BucketDeliveryState + "." + key)
	m.Data = b
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	err = s.records.Submit(ctx, m, func(_ *jetstream.PubAck, err error) {
		if err != nil && !isWrongSequence(err) {
			s.log.WarnContext(ctx, "record pair outcome", "pair", key, "state", st.State, "error", err)
		}
	})
	if err != nil {
		s.log.WarnContext(ctx, "record pair outcome", "pair", key, "state", st.State, "error", err)
	}
}

// errLost is a lost race for a pair's record: the message is re-evaluated
// shortly, against the winner's record.
var errLost = &bus.RetryAfterError{Delay: 200 * time.Millisecond, Err: errors.New("delivery state changed concurrently")}

// handleDelivery delivers one pair, at most once per claim of its record.
func (s *Service) handleDelivery(ctx context.Context, msg jetstream.Msg) error {
	e, err := cenats.Decode(msg.Headers(), msg.Data())
	if err != nil {
		return bus.Permanent(err)
	}
	var d payload.Delivery
	if err := e.DataAs(&d); err != nil {
		return bus.Permanent(fmt.Errorf("delivery data: %w", err))
	}
	if d.Attempt < 1 {
		d.Attempt = 1
	}
	key := pairKey(d.NotificationID, d.SubscriptionID)
	now := time.Now()

	// The pair's record decides first: a settled pair or a stale duplicate
	// is acked, a leased pair waits. A first attempt that is not a replay
	// almost never has a record yet, so it is not read up front: the claim
	// is a Create, and the record is read only when the Create finds one,
	// or before the pair is turned away on any other path. Either way the
	// record is judged before anything else is done with the pair, as if
	// it had been read first; the common case saves a round trip.
	var st *pairState
	var rev uint64
	loaded := false
	recordDecides := func() (bool, error) {
		if loaded {
			return false, nil
		}
		loaded = true
		var err error
		if st, rev, err = s.loadState(ctx, key); err != nil {
			return true, err
		}
		return decidedByRecord(st, d, time.Now())
	}
	// turnAway sends the pair away by then, unless its record decides first.
	turnAway := func(then func() error) error {
		if done, err := recordDecides(); done {
			return err
		}
		return then()
	}
	// A first delivery of a pair's first attempt is the common case, and
	// the consumer gives it to this worker alone until AckWait (extended by
	// InProgress while the POST runs): it needs no claim, and its record is
	// written once, with the outcome. Anything else (a redelivery after a
	// crash or a lost ack, a retry, a replay) is judged by the record and
	// claimed before the POST.
	//
	// Fresh also means recent: the planner publishes a pair under the
	// message id <notification>:<subscription>, so within the duplicate
	// window JetStream keeps at most one such message per pair. A pair
	// planned again later (a notification redelivered after a long outage)
	// is judged by its record like a redelivery.
	fresh := d.Attempt == 1 && d.Replay == "" && d.NotifiedAt != nil && time.Since(*d.NotifiedAt) < contract.DuplicateWindow/2
	if meta, err := msg.Metadata(); err != nil || meta.NumDelivered > 1 {
		fresh = false
	}
	if !fresh {
		if done, err := recordDecides(); done {
			return err
		}
	}
	sub, ok := s.index.get(d.Tenant, d.SubscriptionID)
	if !ok {
		if meta, err := msg.Metadata(); err == nil && meta.NumDelivered < 5 {
			// The index of this instance may lag the registry.
			return turnAway(func() error {
				return &bus.RetryAfterError{Delay: 2 * time.Second, Err: errors.New("subscription not in index yet")}
			})
		}
	}
	switch {
	case ok && sub.Status == subscription.StatusPaused:
		return turnAway(func() error { return s.reschedule(ctx, d, now.Add(time.Minute), "paused") })
	case !ok || !sub.Active():
		return turnAway(func() error {
			return s.settleUnsendable(ctx, key, rev, st, d, sub, "subscription deleted or disabled")
		})
	}
	host := endpointHost(sub.URL)
	if until := s.breaker.openUntil(host, now); !until.IsZero() {
		return turnAway(func() error { return s.reschedule(ctx, d, until, "breaker") })
	}
	slot, ok := s.breaker.acquire(ctx, host, s.cfg.EndpointConcurrency, busyWait)
	if !ok {
		// The endpoint has had its share of workers for a while (it is
		// slow): the pair goes back to the stream for a short time rather
		// than holding a worker that healthy endpoints need.
		return turnAway(func() error {
			return &bus.RetryAfterError{Delay: busyRetry + time.Duration(rand.Int64N(int64(busyRetry))), Err: errors.New("endpoint busy")}
		})
	}
	// The slot caps concurrent POSTs to the endpoint: it is given back as
	// soon as the POST returns, not after the settle's fsynced writes, and
	// the deferred call covers every return before that. Once only.
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(slot) }
	defer release()
	wait, unreserve := s.limits.reserve(sub, now)
	if wait > 0 {
		if done, err := recordDecides(); done {
			unreserve()
			return err
		}
	}
	if wait > time.Second {
		unreserve()
		return s.reschedule(ctx, d, now.Add(wait), "ratelimit")
	} else if wait > 0 {
		time.Sleep(wait)
	}

	claim := pairState{
		State: stateInFlight, Owner: s.instance, LeaseUntil: time.Now().Add(s.lease), Attempts: d.Attempt - 1,
		Replay: d.Replay, Tenant: d.Tenant, SubscriptionID: d.SubscriptionID, NotificationID: d.NotificationID,
		NotificationTenant: d.NotificationTenant, NotificationSeq: d.NotificationSeq,
	}
	if !fresh {
		if rev, err = s.putState(ctx, key, rev, claim); err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) {
				return errLost
			}
			return fmt.Errorf("claim pair: %w", err)
		}
	}

	res := s.post(ctx, msg, sub, d, key)
	release()
	return s.settle(ctx, key, rev, claim, d, sub, res)
}

// decidedByRecord reports whether the pair's record settles a message for
// attempt d by itself, and with what result: a settled pair, one superseded
// by a replay and a stale duplicate are acked; a pair leased by another
// worker is looked at again when the lease ends.
func decidedByRecord(st *pairState, d payload.Delivery, now time.Time) (bool, error) {
	switch {
	case st == nil:
		return false, nil
	case st.Replay != d.Replay, st.State == stateDelivered, st.State == stateDeadLettered:
		return true, nil // settled, or superseded by a replay
	case d.Attempt <= st.Attempts:
		return true, nil // stale duplicate of an attempt already recorded
	case st.State == stateInFlight && now.Before(st.LeaseUntil):
		// Another worker holds the pair; look again when its lease ends.
		return true, &bus.RetryAfterError{Delay: max(time.Second, st.LeaseUntil.Sub(now)), Err: errors.New("pair leased by " + st.Owner)}
	}
	return false, nil
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// post runs the HTTP attempt, telling JetStream the message is in progress
// so AckWait never expires under a slow POST. A stopping instance abandons
// the POST after ShutdownGrace.
func (s *Service) post(ctx context.Context, msg jetstream.Msg, sub subscription.Subscription, d payload.Delivery, key string) result {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.abort != nil {
		stop := context.AfterFunc(s.abort, cancel)
		defer stop()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(contract.DelivererAckWait / 4)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return s.sender.send(pctx, sub, d, webhookID(key))
}

func retryable(r result) bool {
	switch r.class {
	case payload.ErrClassTimeout, payload.ErrClassConnection, payload.ErrClassTLS:
		return true
	case payload.ErrClassHTTPStatus:
		return r.status == 429 || r.status >= 500
	}
	return false
}

// settle records the outcome of an attempt: ATTEMPTS first (its message id
// is deterministic, so a repeat is dropped), then the pair's record.
func (s *Service) settle(ctx context.Context, key string, rev uint64, st pairState, d payload.Delivery, sub subscription.Subscription, res result) error {
	now := time.Now()
	started := now.Add(-res.latency)
	host := endpointHost(sub.URL)
	st.Owner, st.LeaseUntil, st.LastStatus, st.NextAt = "", time.Time{}, res.status, nil
	st.LastError = ""
	if res.err != nil {
		st.LastError = res.err.Error()
	}
	attemptID := key + ":" + strconv.Itoa(d.Attempt) + replaySuffix(d.Replay)

	if s.abort != nil && s.abort.Err() != nil && res.err != nil && retryable(res) {
		// This instance is stopping and cut the POST short: hand the pair
		// to another instance now, without counting the attempt.
		st.State = stateRetryScheduled
		if _, err := s.putState(ctx, key, rev, st); err != nil {
			s.log.Warn("release pair on stop", "pair", key, "error", err)
		}
		return &bus.RetryAfterError{Delay: 0, Err: errors.New("dispatcher stopping")}
	}

	switch {
	case res.err == nil:
		s.breaker.record(host, true, now)
		s.clearHealth(ctx, sub)
		st.State, st.Attempts = stateDelivered, d.Attempt
		if err := s.publishAttempt(ctx, attemptID, s.attemptRecord(d, sub, res, payload.OutcomeDelivered, started, nil)); err != nil {
			return err
		}
		if d.NotifiedAt != nil {
			s.metrics.DeliveredAfter(ctx, time.Since(*d.NotifiedAt))
		}
	case res.status == 410:
		st.State, st.Attempts = stateDeadLettered, d.Attempt
		if err := s.publishAttempt(ctx, attemptID, s.attemptRecord(d, sub, res, payload.OutcomeFailed, started, nil)); err != nil {
			return err
		}
		if err := s.disable(ctx, sub, "endpoint answered 410 Gone", typeSubscriptionDisabled); err != nil {
			return err
		}
	case retryable(res):
		s.breaker.record(host, false, now)
		expired, err := s.noteFailure(ctx, sub, now)
		if err != nil {
			s.log.Warn("endpoint health", "subscription", sub.ID, "error", err)
		}
		delay, more := nextDelay(s.cfg.Schedule, d.Attempt, s.cfg.Jitter, res.retryAfter)
		if sub.RetryPolicy == subscription.RetrySingle || expired {
			more = false
		}
		st.Attempts = d.Attempt
		if !more {
			st.State = stateDeadLettered
			if err := s.publishAttempt(ctx, attemptID, s.attemptRecord(d, sub, res, payload.OutcomeDeadLettered, started, nil)); err != nil {
				return err
			}
			if expired {
				if err := s.disable(ctx, sub, "endpoint failing continuously for "+s.cfg.DisableAfter.String(), typeEndpointDisabled); err != nil {
					return err
				}
			}
			break
		}
		at := scheduleTime(now, delay)
		next := d
		next.Attempt = d.Attempt + 1
		if err := s.publishDelivery(ctx, next, key+":"+strconv.Itoa(next.Attempt)+replaySuffix(d.Replay), jetstream.WithScheduleAt(at)); err != nil {
			return err
		}
		st.State, st.NextAt = stateRetryScheduled, &at
		if err := s.publishAttempt(ctx, attemptID, s.attemptRecord(d, sub, res, payload.OutcomeRetrying, started, &at)); err != nil {
			return err
		}
	default:
		st.State, st.Attempts = stateDeadLettered, d.Attempt
		if err := s.publishAttempt(ctx, attemptID, s.attemptRecord(d, sub, res, payload.OutcomeFailed, started, nil)); err != nil {
			return err
		}
	}
	// A compare-and-set on the claim (rev 0 for a fresh pair: a create).
	// If the lease was taken over (the attempt outlived it), the write
	// loses: the POST happened and is recorded in ATTEMPTS, and the new
	// owner settles the pair.
	s.writeRecord(ctx, key, rev, st)
	return nil
}

// settleUnsendable dead-letters a pair whose subscription is gone.
func (s *Service) settleUnsendable(ctx context.Context, key string, rev uint64, st *pairState, d payload.Delivery, sub subscription.Subscription, why string) error {
	rec := pairState{State: stateDeadLettered, Attempts: d.Attempt - 1, Replay: d.Replay, Tenant: d.Tenant,
		SubscriptionID: d.SubscriptionID, NotificationID: d.NotificationID, NotificationTenant: d.NotificationTenant,
		NotificationSeq: d.NotificationSeq, LastError: why}
	if _, err := s.putState(ctx, key, rev, rec); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) {
			return errLost
		}
		return err
	}
	return nil
}

// reschedule puts the pair back in the stream for the same attempt at t,
// as a scheduled message; the current message is then acked.
func (s *Service) reschedule(ctx context.Context, d payload.Delivery, t time.Time, why string) error {
	at := scheduleTime(time.Now(), time.Until(t))
	id := pairKey(d.NotificationID, d.SubscriptionID) + ":" + strconv.Itoa(d.Attempt) + replaySuffix(d.Replay) + ":" + why + ":" + strconv.FormatInt(at.Unix(), 10)
	return s.publishDelivery(ctx, d, id, jetstream.WithScheduleAt(at))
}

func replaySuffix(r string) string {
	if r == "" {
		return ""
	}
	return ":" + r
}

func endpointHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Host
}

func (s *Service) attemptRecord(d payload.Delivery, sub subscription.Subscription, res result, outcome string, started time.Time, next *time.Time) payload.Attempt {
	var n struct {
		Subject string `json:"subject"`
	}
	_ = json.Unmarshal(d.Notification, &n)
	a := payload.Attempt{
		AttemptID: pairKey(d.NotificationID, d.SubscriptionID) + ":" + strconv.Itoa(d.Attempt) + replaySuffix(d.Replay),
		WebhookID: webhookID(pairKey(d.NotificationID, d.SubscriptionID)),
		Tenant:    d.Tenant, SubscriptionID: d.SubscriptionID, NotificationID: d.NotificationID,
		NotificationType: d.NotificationType, Subject: n.Subject, URL: redactURL(sub.URL),
		Attempt: d.Attempt, Outcome: outcome, StatusCode: res.status, ErrorClass: res.class,
		LatencyMs: float64(res.latency.Microseconds()) / 1000, ResponseSnippet: res.snippet,
		StartedAt: started.UTC(), NextAttemptAt: next, Replay: d.Replay != "",
	}
	if res.err != nil {
		a.Error = res.err.Error()
	}
	return a
}

func (s *Service) publishAttempt(ctx context.Context, id string, a payload.Attempt) error {
	e := event.New()
	e.SetID(id)
	e.SetSource(eventSource)
	e.SetType(payload.TypeAttempt)
	e.SetSubject(a.SubscriptionID)
	e.SetTime(a.StartedAt)
	e.SetExtension("tenant", a.Tenant)
	if err := e.SetData(event.ApplicationJSON, a); err != nil {
		return bus.Permanent(err)
	}
	var via bus.Publisher = s.js
	if s.attemptLog != nil {
		via = s.attemptLog // shares its fsync with other workers' records
	}
	_, err := bus.PublishEvent(ctx, via, contract.AttemptSubject(a.Tenant, a.SubscriptionID), id, e)
	if err == nil && s.metrics != nil {
		s.metrics.Delivered(ctx, a.Outcome)
		if a.Outcome == payload.OutcomeDeadLettered {
			s.metrics.DeadLetters.Add(ctx, 1)
		}
	}
	return err
}

// A pair whose endpoint is at its concurrency cap waits up to busyWait for
// a slot (bursts to a fast endpoint pass at its speed), then returns to the
// stream for busyRetry to 2*busyRetry.
const (
	busyWait  = 250 * time.Millisecond
	busyRetry = 500 * time.Millisecond
)

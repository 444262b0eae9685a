package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

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
	var delivered uint64
	if meta, err := msg.Metadata(); err == nil {
		delivered = meta.NumDelivered
	}
	fresh := firstDelivery(d, delivered, now)
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
	slot, ok, stalled := s.breaker.acquire(ctx, host, s.cfg.EndpointConcurrency, busyWait)
	if !ok {
		// The endpoint has had its share of workers for a while: the pair
		// goes back to the stream rather than holding a worker that
		// healthy endpoints need; for a short time if the endpoint is only
		// busy, and for half a timeout if it is stalled (its POSTs run
		// into the timeout, and its breaker will know more by then).
		retry := busyRetry
		if stalled {
			retry = max(busyRetry, s.cfg.Timeout/2)
		}
		return turnAway(func() error {
			return &bus.RetryAfterError{Delay: retry + time.Duration(rand.Int64N(int64(retry))), Err: errors.New("endpoint busy")}
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
	return s.sender.send(pctx, sub, d, attemptWebhookID(key, d.Replay))
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
		WebhookID: attemptWebhookID(pairKey(d.NotificationID, d.SubscriptionID), d.Replay),
		Tenant:    d.Tenant, SubscriptionID: d.SubscriptionID, NotificationID: d.NotificationID,
		NotificationType: d.NotificationType, Subject: n.Subject, URL: redactURL(sub.URL),
		Attempt: d.Attempt, Outcome: outcome, StatusCode: res.status, ErrorClass: res.class,
		LatencyMs: float64(res.latency.Microseconds()) / 1000, ResponseSnippet: res.snippet,
		StartedAt: started.UTC(), NextAttemptAt: next, Replay: d.Replay != "",
	}
	if d.Replay != "" {
		a.ReplayOf = webhookID(pairKey(d.NotificationID, d.SubscriptionID))
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

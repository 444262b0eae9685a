package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// The claim protocol of a pair, in one place. A pair's first delivery is
// the common case and needs nothing written before its POST: the consumer
// gives a message to one worker at a time until AckWait (extended by
// InProgress while the POST runs). Everything else (a redelivery after a
// crash or a lost ack, a retry, a replay, a pair planned again after the
// duplicate window) is judged by the pair's record and claimed with a
// compare-and-set before the POST. The outcome goes to ATTEMPTS (the
// proof, under an id made of the pair and the attempt, so a second POST
// of the same attempt is recorded once) before the message is acked, and
// to the record, through the records Batcher, with it.

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

// attemptWebhookID is the webhook-id a pair is posted under: the pair's own,
// or for a replay a new one (the original plus the replay's id), so that a
// receiver that drops ids it has seen takes the replay it was asked to
// take. The replay's POST names the original in HeaderReplayOf.
func attemptWebhookID(key, replay string) string {
	if replay == "" {
		return webhookID(key)
	}
	return webhookID(key) + "_" + replay
}

// HeaderReplayOf carries, on a replay's POST, the webhook-id of the pair
// it replays.
const HeaderReplayOf = "Herald-Replay-Of"

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

// firstDelivery reports whether a message is a pair's first delivery of
// its first attempt, which needs no claim: a plan message (not a retry or
// a replay) delivered for the first time, planned recently. Recently,
// because the planner publishes a pair under the message id
// <notification>:<subscription>, and within the duplicate window
// JetStream keeps at most one such message per pair; a pair planned again
// later (a notification redelivered after a long outage) is judged by its
// record like a redelivery. A message that does not say when it was
// planned is judged too.
func firstDelivery(d payload.Delivery, numDelivered uint64, now time.Time) bool {
	return d.Attempt == 1 && d.Replay == "" && numDelivered == 1 &&
		d.NotifiedAt != nil && now.Sub(*d.NotifiedAt) < contract.DuplicateWindow/2
}

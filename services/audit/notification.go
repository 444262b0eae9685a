package audit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/domain/auditchain"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/problem"
)

// A notification's fate per subscription ("attempts by endpoint"), read
// from the trail: the notification's own record and every attempt made for
// it, grouped by subscription. A pair appears with its first attempt, which
// the dispatcher makes right after planning it.

// NotificationFate is the answer of GET .../notifications/{id}.
type NotificationFate struct {
	NotificationID string `json:"notificationId"`
	// Notification is the notification's own audit record; absent when the
	// trail holds only attempts for it (the record expired).
	Notification  *auditchain.Record `json:"notification,omitempty"`
	Subscriptions []PairFate         `json:"subscriptions"`
}

// PairFate is one (notification, subscription) pair.
type PairFate struct {
	SubscriptionID string `json:"subscriptionId"`
	// State is the outcome of the pair's latest attempt: delivered,
	// retrying, failed or dead_lettered (replay_requested while only a
	// replay request is recorded).
	State string `json:"state"`
	// ReplayRequested is set when a replay was asked for after the latest
	// attempt and has not been attempted yet.
	ReplayRequested bool      `json:"replayRequested,omitempty"`
	Attempts        int       `json:"attempts"`
	WebhookID       string    `json:"webhookId,omitempty"`
	URL             string    `json:"url,omitempty"`
	FirstAttemptAt  time.Time `json:"firstAttemptAt"`
	LastAttemptAt   time.Time `json:"lastAttemptAt"`
	LastStatusCode  int       `json:"lastStatusCode,omitempty"`
	// History is every attempt of the pair, oldest first.
	History []AttemptSummary `json:"history"`
}

// AttemptSummary is one attempt as the trail records it.
type AttemptSummary struct {
	Seq             uint64    `json:"seq"` // AUDIT sequence of its record
	Attempt         int       `json:"attempt"`
	Outcome         string    `json:"outcome"`
	StatusCode      int       `json:"statusCode,omitempty"`
	ErrorClass      string    `json:"errorClass,omitempty"`
	Error           string    `json:"error,omitempty"`
	LatencyMs       float64   `json:"latencyMs,omitempty"`
	ResponseSnippet string    `json:"responseSnippet,omitempty"`
	Replay          bool      `json:"replay,omitempty"`
	At              time.Time `json:"at"`
}

func (s *Service) serveNotification(w http.ResponseWriter, r *http.Request, tenant string) {
	id := r.PathValue("id")
	if id == "" || len(id) > 512 {
		problem.Write(w, r, problem.Invalid("invalid notification id", problem.FieldError{Pointer: "id", Detail: "want a notification's CloudEvent id, at most 512 characters"}))
		return
	}
	fate, err := s.Fate(r.Context(), tenant, id)
	if err != nil {
		s.unavailable(w, r, "notification fate", tenant, err)
		return
	}
	if fate.Notification == nil && len(fate.Subscriptions) == 0 {
		problem.Write(w, r, problem.New(http.StatusNotFound, fmt.Sprintf(
			"the audit trail of tenant %s holds no notification %q and no attempt for it (unknown, not recorded yet, or past retention)", tenant, id)))
		return
	}
	writeJSON(w, fate)
}

// Fate gathers notification id's record and attempts from the index. It
// reads at most maxScan records.
func (s *Service) Fate(ctx context.Context, tenant, id string) (NotificationFate, error) {
	out := NotificationFate{NotificationID: id, Subscriptions: []PairFate{}}
	pairs := map[string]*PairFate{}
	cands := s.idx.candidates(tenant, query{Notification: id})
	if len(cands) > maxScan {
		cands = cands[len(cands)-maxScan:]
	}
	for _, e := range cands {
		rec, err := s.fetch(ctx, e.seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // expired
		}
		if err != nil {
			return out, err
		}
		if rec.Tenant != tenant {
			continue
		}
		switch {
		case rec.Kind == auditchain.KindNotification && rec.ID == id:
			out.Notification = &rec
		case rec.Kind == auditchain.KindAttempt && rec.NotificationID == id && rec.SubscriptionID != "":
			p := pairs[rec.SubscriptionID]
			if p == nil {
				p = &PairFate{SubscriptionID: rec.SubscriptionID, History: []AttemptSummary{}}
				pairs[rec.SubscriptionID] = p
			}
			p.add(rec)
		}
	}
	for _, p := range pairs {
		out.Subscriptions = append(out.Subscriptions, *p)
	}
	sort.Slice(out.Subscriptions, func(i, j int) bool { return out.Subscriptions[i].SubscriptionID < out.Subscriptions[j].SubscriptionID })
	return out, nil
}

// add folds one attempt record, in trail order, into the pair.
func (p *PairFate) add(r auditchain.Record) {
	p.History = append(p.History, AttemptSummary{
		Seq: r.Seq, Attempt: r.Attempt, Outcome: r.Outcome, StatusCode: r.StatusCode, ErrorClass: r.ErrorClass,
		Error: r.Error, LatencyMs: r.LatencyMs, ResponseSnippet: r.ResponseSnippet, Replay: r.Replay, At: r.At,
	})
	if r.Outcome == payload.OutcomeReplayRequested {
		p.ReplayRequested = true // a request, not an attempt
		if p.State == "" {
			p.State = r.Outcome
		}
		return
	}
	p.ReplayRequested = false
	p.Attempts++
	p.State, p.LastStatusCode, p.LastAttemptAt = r.Outcome, r.StatusCode, r.At
	if p.FirstAttemptAt.IsZero() {
		p.FirstAttemptAt = r.At
	}
	if r.WebhookID != "" {
		p.WebhookID = r.WebhookID
	}
	if r.URL != "" {
		p.URL = r.URL
	}
}

package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/engine/alertfsm"
	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// The engine's read API: the alerts and operations its buckets hold, so a
// caller can ask for the state of an alert or a protocol UUID instead of
// waiting for a webhook. Every route needs a credential for the path's
// tenant, as the other services' tenant routes do.

// Routes implements service.HTTPService.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.Handle("GET /v1/tenants/{tenant}/alerts", s.guard(s.listAlerts))
	mux.Handle("GET /v1/tenants/{tenant}/alerts/{id}", s.guard(s.getAlert))
	mux.Handle("GET /v1/tenants/{tenant}/operations/{protocol}", s.guard(s.getOperation))
}

func (s *Service) guard(h func(w http.ResponseWriter, r *http.Request, tenant string)) http.Handler {
	return apiauth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := r.PathValue("tenant")
		if !apiauth.ForTenant(w, r, tenant) {
			return
		}
		if contract.ValidateToken(tenant) != nil {
			problem.Write(w, r, problem.Invalid("invalid tenant id", problem.FieldError{Pointer: "tenant", Detail: "want 1-64 of [a-z0-9_-], starting with a letter or digit"}))
			return
		}
		if s.Ready() != nil {
			p := problem.New(http.StatusServiceUnavailable, "the engine is starting; retry shortly")
			p.RetryAfter = 2 * time.Second
			problem.Write(w, r, p)
			return
		}
		h(w, r, tenant)
	}), s.auth)
}

// alertView is an alert as the API shows it: the data its notifications
// carry (payload.Alert), and for one alert its transitions.
type alertView struct {
	payload.Alert
	// Resolving is set while flap damping holds a resolve back.
	Resolving bool `json:"resolving,omitempty"`
	// Partial marks an earlier life of the alert's key: only what its
	// transitions kept is known (the record holds the latest life).
	Partial     bool             `json:"partial,omitempty"`
	Transitions []transitionView `json:"transitions,omitempty"`
}

// transitionView is one transition and the notification it caused.
// Published is false while the notification waits in the record's
// pending list (it is published before the input is acknowledged).
type transitionView struct {
	alertfsm.Transition
	Published bool `json:"published"`
}

type alertPage struct {
	Items      []alertView `json:"items"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

const (
	defaultLimit = 50
	maxLimit     = 200
)

// listAlerts is GET .../alerts[?state=open|resolved][&limit=][&cursor=]: one
// item per alert key (its latest life), ordered by key.
func (s *Service) listAlerts(w http.ResponseWriter, r *http.Request, tenant string) {
	q := r.URL.Query()
	var errs []problem.FieldError
	state := q.Get("state")
	if state != "" && state != payload.AlertStateOpen && state != payload.AlertStateResolved {
		errs = append(errs, problem.FieldError{Pointer: "state", Detail: "want open or resolved"})
	}
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			errs = append(errs, problem.FieldError{Pointer: "limit", Detail: fmt.Sprintf("want an integer from 1 to %d", maxLimit)})
		}
		limit = n
	}
	var after string
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || !strings.HasPrefix(string(b), tenant+".") {
			errs = append(errs, problem.FieldError{Pointer: "cursor", Detail: "not a next_cursor returned by this API for this tenant"})
		}
		after = string(b)
	}
	if len(errs) > 0 {
		problem.Write(w, r, problem.Invalid("invalid query parameters", errs...))
		return
	}
	recs, err := s.tenantAlerts(r.Context(), tenant)
	if err != nil {
		s.unavailable(w, r, "read alerts", err)
		return
	}
	t, err := s.tenant(r.Context(), tenant)
	if err != nil {
		s.unavailable(w, r, "read tenant", err)
		return
	}
	o := alertOptions(t)
	out := alertPage{Items: []alertView{}}
	var last string
	for _, rec := range recs {
		if rec.key <= after {
			continue
		}
		v := currentAlert(rec.alert, o)
		if state != "" && v.State != state {
			continue
		}
		if len(out.Items) == limit {
			out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(last))
			break
		}
		out.Items = append(out.Items, v)
		last = rec.key
	}
	writeJSON(w, out)
}

// getAlert is GET .../alerts/{id}: the alert whose alertId is id, with its
// transitions. An earlier life of a key is found through the transitions
// its record still keeps.
func (s *Service) getAlert(w http.ResponseWriter, r *http.Request, tenant string) {
	id := r.PathValue("id")
	recs, err := s.tenantAlerts(r.Context(), tenant)
	if err != nil {
		s.unavailable(w, r, "read alerts", err)
		return
	}
	t, err := s.tenant(r.Context(), tenant)
	if err != nil {
		s.unavailable(w, r, "read tenant", err)
		return
	}
	o := alertOptions(t)
	for _, rec := range recs {
		a := rec.alert
		var v alertView
		switch {
		case a.AlertID == id:
			v = currentAlert(a, o)
		case slices.ContainsFunc(a.History, func(tr alertfsm.Transition) bool { return tr.AlertID == id }):
			v = pastAlert(a, id, o)
		default:
			continue
		}
		v.Transitions = []transitionView{}
		for _, tr := range a.History {
			if tr.AlertID != id {
				continue
			}
			pending := slices.ContainsFunc(a.Pending, func(n alertfsm.Notification) bool { return n.ID == tr.NotificationID })
			v.Transitions = append(v.Transitions, transitionView{Transition: tr, Published: !pending})
		}
		writeJSON(w, v)
		return
	}
	problem.Write(w, r, problem.New(http.StatusNotFound, fmt.Sprintf("tenant %s has no alert %q (GET /v1/tenants/%s/alerts lists them)", tenant, id, tenant)))
}

// currentAlert shows the latest life of a record as its notifications
// would.
func currentAlert(a alertfsm.Alert, o alertfsm.Options) alertView {
	state := payload.AlertStateResolved
	if a.Open {
		state = payload.AlertStateOpen
	}
	acct := a.AccountID
	if acct == "" {
		acct = o.AccountID
	}
	v := alertView{Alert: payload.Alert{
		AlertID: a.AlertID, ProjectID: o.ProjectID, AccountID: acct, Title: a.Title, Text: a.Text,
		CreatedAt: a.CreatedAt, StateUpdatedAt: a.StateUpdatedAt, State: state, Key: a.Key,
		Resources: []string{}, EventIDs: slices.Clone(a.EventIDs), Sequence: a.Seq, Reminder: a.Reminded,
	}, Resolving: a.Holding}
	for r := range a.Affected {
		v.Resources = append(v.Resources, r)
	}
	slices.Sort(v.Resources)
	var rank int
	for _, af := range a.Affected {
		if af.Rank > rank || v.Severity == "" {
			v.Severity, rank = af.Severity, af.Rank
		}
	}
	if v.EventIDs == nil {
		v.EventIDs = []string{}
	}
	for _, tr := range a.History {
		if tr.AlertID == a.AlertID {
			v.Transition = tr.Transition
		}
	}
	return v
}

// pastAlert rebuilds an earlier life of a record from its transitions.
func pastAlert(a alertfsm.Alert, id string, o alertfsm.Options) alertView {
	v := alertView{Partial: true, Alert: payload.Alert{
		AlertID: id, ProjectID: o.ProjectID, AccountID: o.AccountID, Title: a.Title, Text: a.Text, Key: a.Key,
		Resources: []string{}, EventIDs: []string{},
	}}
	if a.AccountID != "" {
		v.AccountID = a.AccountID
	}
	for _, tr := range a.History {
		if tr.AlertID != id {
			continue
		}
		if v.CreatedAt.IsZero() {
			v.CreatedAt = tr.At
		}
		v.StateUpdatedAt, v.State, v.Transition, v.Severity, v.Sequence = tr.At, tr.State, tr.Transition, tr.Severity, tr.Sequence
	}
	return v
}

type alertRecord struct {
	key   string
	alert alertfsm.Alert
}

// tenantAlerts reads every alert record of tenant that has had a life,
// sorted by key, in one pass of a KV watcher over tenant.* rather than a
// read per key.
func (s *Service) tenantAlerts(ctx context.Context, tenant string) ([]alertRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	wt, err := s.alerts.WatchFiltered(ctx, []string{tenant + ".*"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("watch alerts of %s: %w", tenant, err)
	}
	defer func() { _ = wt.Stop() }()
	var out []alertRecord
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read alerts of %s: %w", tenant, ctx.Err())
		case e, ok := <-wt.Updates():
			if !ok {
				return nil, fmt.Errorf("read alerts of %s: watcher stopped", tenant)
			}
			if e == nil { // every current value has been delivered
				slices.SortFunc(out, func(a, b alertRecord) int { return strings.Compare(a.key, b.key) })
				return out, nil
			}
			var a alertfsm.Alert
			if err := json.Unmarshal(e.Value(), &a); err != nil {
				return nil, fmt.Errorf("decode alert %s: %w", e.Key(), err)
			}
			if a.AlertID != "" {
				out = append(out, alertRecord{key: e.Key(), alert: a})
			}
		}
	}
}

// operationView is an operation as its notifications show it, plus
// whether its deadline passed.
type operationView struct {
	payload.Operation
	// TimedOut is set once operation.timed_out was sent; with a later
	// result the state is that result's and Late is set.
	TimedOut bool `json:"timedOut"`
}

// getOperation is GET .../operations/{protocol}: the state of one protocol
// UUID (requested, succeeded, failed or timed_out, and late).
func (s *Service) getOperation(w http.ResponseWriter, r *http.Request, tenant string) {
	proto := strings.ToLower(r.PathValue("protocol"))
	if proto == "" || len(proto) > 200 {
		problem.Write(w, r, problem.Invalid("invalid protocol", problem.FieldError{Pointer: "protocol", Detail: "want the operation's protocol UUID, at most 200 characters"}))
		return
	}
	e, err := s.ops.Get(r.Context(), tenant+"."+opToken(proto))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		problem.Write(w, r, problem.New(http.StatusNotFound, fmt.Sprintf("tenant %s has no operation with protocol %q", tenant, proto)))
		return
	}
	if err != nil {
		s.unavailable(w, r, "read operation", err)
		return
	}
	var op alertfsm.Operation
	if err := json.Unmarshal(e.Value(), &op); err != nil {
		s.unavailable(w, r, "decode operation", err)
		return
	}
	v := operationView{TimedOut: op.TimedOut, Operation: payload.Operation{
		Protocol: op.Protocol, Device: op.Device, Kind: op.Kind, State: op.State,
		RequestedAt: op.RequestedAt, Deadline: op.Deadline, CompletedAt: op.CompletedAt,
		Late: op.TimedOut && op.CompletedAt != nil, Status: op.Status,
		EventIDs: slices.Clone(op.EventIDs), Sequence: op.Seq,
	}}
	if v.EventIDs == nil {
		v.EventIDs = []string{}
	}
	writeJSON(w, v)
}

func (s *Service) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.ErrorContext(r.Context(), what, "error", err, "path", r.URL.Path)
	p := problem.New(http.StatusServiceUnavailable, what+" failed: JetStream is unavailable; retry shortly")
	p.RetryAfter = 2 * time.Second
	problem.Write(w, r, p)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

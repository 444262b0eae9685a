package collector

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/apikey"
	"github.com/heraldhq/herald/services/internal/problem"
)

// keyView is a key as the API shows it; Key is set only in the answer to
// its creation.
type keyView struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Name      string    `json:"name,omitempty"`
	Key       string    `json:"key,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

func viewOf(r apikey.Record) keyView {
	return keyView{ID: r.ID, Tenant: r.Tenant, Name: r.Name, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy}
}

func (s *Service) handleCreateKey(w http.ResponseWriter, r *http.Request) {
	t, p := s.lookupTenant(r.Context(), r.PathValue("tenant"))
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	var in struct {
		Name string `json:"name"`
	}
	body, p := s.readBody(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			problem.Write(w, r, problem.Invalid("the body is not JSON", problem.FieldError{Pointer: "", Detail: err.Error()}))
			return
		}
	}
	if len(in.Name) > 128 {
		problem.Write(w, r, problem.Invalid("name too long", problem.FieldError{Pointer: "/name", Detail: "at most 128 characters"}))
		return
	}
	pr, _ := apiauth.FromContext(r.Context())
	rec, key, err := s.keys.Load().Create(r.Context(), t.ID, in.Name, pr.Actor)
	if err != nil {
		s.log.WarnContext(r.Context(), "create api key", "tenant", t.ID, "error", err)
		problem.Write(w, r, unavailable("could not store the key"))
		return
	}
	s.recordChange(r.Context(), rec, payload.ActionCreated)
	v := viewOf(rec)
	v.Key = key
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Service) handleListKeys(w http.ResponseWriter, r *http.Request) {
	recs, err := s.keys.Load().List(r.Context(), r.PathValue("tenant"))
	if err != nil {
		problem.Write(w, r, unavailable("could not list keys"))
		return
	}
	out := struct {
		Keys []keyView `json:"keys"`
	}{Keys: []keyView{}}
	for _, rec := range recs {
		out.Keys = append(out.Keys, viewOf(rec))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Service) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	tenant, id := r.PathValue("tenant"), r.PathValue("id")
	err := s.keys.Load().Revoke(r.Context(), tenant, id)
	if err == nil {
		s.recordChange(r.Context(), apikey.Record{ID: id, Tenant: tenant}, payload.ActionDeleted)
	}
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		problem.Write(w, r, problem.New(http.StatusNotFound, "no such key for this tenant"))
	case err != nil:
		problem.Write(w, r, unavailable("could not revoke the key"))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// changeSource is the CloudEvent source of the collector's CHANGES records.
const changeSource = "urn:herald:collector"

// recordChange writes herald.change.apikey.<action> to CHANGES (the
// registry's stream) for the audit trail. The key change is already stored,
// so a failed publish is logged, not returned: the record is lost, not the
// change. The id is deterministic, so a retried revoke records once.
func (s *Service) recordChange(ctx context.Context, rec apikey.Record, action string) {
	actor := "unknown"
	if p, ok := apiauth.FromContext(ctx); ok && p.Actor != "" {
		actor = p.Actor
	}
	ch := payload.Change{Tenant: rec.Tenant, Entity: "apikey", EntityID: rec.ID, Action: action, Actor: actor, At: time.Now().UTC()}
	e := event.New()
	e.SetID("apikey_" + rec.ID + "_" + action)
	e.SetSource(changeSource)
	e.SetType(payload.TypeChangePrefix + "apikey." + action)
	e.SetSubject(rec.ID)
	e.SetTime(ch.At)
	e.SetExtension(extTenant, rec.Tenant)
	_ = e.SetData(event.ApplicationJSON, ch)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := bus.PublishEvent(pctx, s.js, contract.ChangeSubject(rec.Tenant, "apikey"), MsgID(rec.Tenant, e.Source(), e.ID()), e); err != nil {
		s.log.ErrorContext(ctx, "record change", "tenant", rec.Tenant, "entity", "apikey", "entity_id", rec.ID, "action", action, "error", err)
	}
}

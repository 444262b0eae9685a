package registry

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/domain/tenancy"
	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// subInput is a subscription as a caller writes it, for create (url and
// events required) and PATCH (every member optional; a present member
// replaces the stored one).
type subInput struct {
	URL                *string            `json:"url"`
	Events             *[]string          `json:"events"`
	Filter             *string            `json:"filter"`
	IncludeSubaccounts *bool              `json:"include_subaccounts"`
	Auth               *authInput         `json:"auth"`
	Headers            *headerInputs      `json:"headers"`
	PayloadMode        *string            `json:"payload_mode"`
	Template           *string            `json:"template"`
	RetryPolicy        *string            `json:"retry_policy"`
	RateLimit          *float64           `json:"rate_limit"`
	Status             *string            `json:"status"`
	Description        *string            `json:"description"`
	Metadata           *map[string]string `json:"metadata"`
	PropagateTrace     *bool              `json:"propagate_trace"`
	Handshake          *bool              `json:"handshake"`
}

// authInput replaces every auth setting at once. A secret left empty keeps
// the stored one when the same kind of auth stays configured, so a PATCH
// need not resend it.
type authInput struct {
	Type       string `json:"type"` // none, basic, bearer
	Username   string `json:"username"`
	Password   string `json:"password"`
	Token      string `json:"token"`
	Ed25519    bool   `json:"ed25519"`     // also sign with ed25519 (v1a)
	ClientCert string `json:"client_cert"` // mTLS certificate chain, PEM
	ClientKey  string `json:"client_key"`  // its private key, PEM
	CACert     string `json:"ca_cert"`     // CA to trust for the endpoint, PEM
}

type subView struct {
	ID                 string            `json:"id"`
	Tenant             string            `json:"tenant"`
	URL                string            `json:"url"`
	Events             []string          `json:"events"`
	Filter             string            `json:"filter,omitempty"`
	IncludeSubaccounts bool              `json:"include_subaccounts"`
	Signature          signatureView     `json:"signature"`
	Auth               authView          `json:"auth"`
	Headers            map[string]any    `json:"headers,omitempty"` // string, or headerView when secret
	PayloadMode        string            `json:"payload_mode"`
	Template           string            `json:"template,omitempty"`
	RetryPolicy        string            `json:"retry_policy"`
	RateLimit          float64           `json:"rate_limit,omitempty"`
	Status             string            `json:"status"`
	StatusReason       string            `json:"status_reason,omitempty"`
	Description        string            `json:"description,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	PropagateTrace     bool              `json:"propagate_trace"`
	OperatorAllowed    bool              `json:"operator_allowed,omitempty"`
	Handshake          bool              `json:"handshake,omitempty"`
	CreatedAt          string            `json:"created_at"`
	UpdatedAt          string            `json:"updated_at"`
}

// signatureView says how every webhook of the subscription is signed,
// whatever auth adds: Standard Webhooks headers, HMAC-SHA256 with the
// secrets (v1), and ed25519 (v1a) when configured.
type signatureView struct {
	Scheme     string   `json:"scheme"`
	Header     string   `json:"header"`
	Algorithms []string `json:"algorithms"`
}

type authView struct {
	Type             string       `json:"type"`
	Username         string       `json:"username,omitempty"`
	PasswordSet      bool         `json:"password_set,omitempty"`
	TokenSet         bool         `json:"token_set,omitempty"`
	Secrets          []secretView `json:"secrets"`
	Ed25519PublicKey string       `json:"ed25519_public_key,omitempty"`
	ClientCert       string       `json:"client_cert,omitempty"`
	ClientKeySet     bool         `json:"client_key_set,omitempty"`
	CACert           string       `json:"ca_cert,omitempty"`
}

// secretView shows that a secret exists, never its value.
type secretView struct {
	ID        string     `json:"id"`
	Hint      string     `json:"hint"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func viewSub(s subscription.Subscription) subView {
	a := s.Auth
	v := subView{
		ID: s.ID, Tenant: s.Tenant, URL: s.URL, Events: s.Events, Filter: s.Filter,
		IncludeSubaccounts: s.IncludeSubaccounts, Headers: viewHeaders(s), PayloadMode: s.PayloadMode,
		Template: s.Template, RetryPolicy: s.RetryPolicy, RateLimit: s.RateLimit, Status: s.Status,
		StatusReason: s.StatusReason, Description: s.Description, Metadata: s.Metadata,
		PropagateTrace: s.PropagateTrace, OperatorAllowed: s.OperatorAllowed, Handshake: s.Handshake,
		CreatedAt: s.CreatedAt.UTC().Format(timeFormat), UpdatedAt: s.UpdatedAt.UTC().Format(timeFormat),
		Auth: authView{
			Type: a.Type, Username: a.Username, PasswordSet: a.PasswordSealed != "", TokenSet: a.TokenSealed != "",
			Ed25519PublicKey: a.Ed25519Public, ClientCert: a.ClientCertPEM, ClientKeySet: a.ClientKeySealed != "",
			CACert: a.CACertPEM, Secrets: []secretView{},
		},
	}
	v.Signature = signatureView{Scheme: "standard-webhooks", Header: webhook.HeaderSignature, Algorithms: []string{"hmac-sha256"}}
	if a.Ed25519Public != "" {
		v.Signature.Algorithms = append(v.Signature.Algorithms, "ed25519")
	}
	for _, sec := range a.Secrets {
		v.Auth.Secrets = append(v.Auth.Secrets, secretView{ID: sec.ID, Hint: webhook.SecretPrefix + "…", CreatedAt: sec.CreatedAt, ExpiresAt: sec.ExpiresAt})
	}
	return v
}

// apply merges in onto sub (a zero Subscription on create) and validates the
// result, adding every problem to errs. Secrets in in are sealed. The field
// rules are the domain's (subscription.Validate); apply adds those on input
// only (status a caller may set, credentials before they are sealed) and
// those that need the world (the URL guard, the event-type catalog, the
// handshake).
func (s *Service) apply(ctx context.Context, in subInput, sub *subscription.Subscription, create bool, errs *fieldErrors) {
	s.merge(in, sub, create, errs)
	for _, fe := range sub.Validate() {
		*errs = append(*errs, problem.FieldError(fe))
	}
	if in.URL != nil && !errs.has("/url") {
		allowed, err := s.checkURL(ctx, sub.Tenant, sub.URL)
		if err != nil {
			errs.add("/url", "%s", err.Error())
		}
		sub.OperatorAllowed = allowed
	}
	if in.Events != nil {
		s.checkEventTypes(ctx, sub.Tenant, sub.Events, errs)
	}
	s.runHandshake(ctx, in, sub, create, errs) // handshake.go; last, once the rest is valid
}

// merge copies the members present in in onto sub and fills the defaults.
// It reports only what Validate cannot see on the merged record: a status
// a caller may not set, and bad credentials and headers, which are sealed
// here.
func (s *Service) merge(in subInput, sub *subscription.Subscription, create bool, errs *fieldErrors) {
	if in.URL != nil {
		sub.URL = strings.TrimSpace(*in.URL)
	}
	if in.Events != nil {
		sub.Events = *in.Events
	}
	if in.Filter != nil {
		// Not trimmed: error columns must match what the caller sent.
		sub.Filter = *in.Filter
		if strings.TrimSpace(sub.Filter) == "" {
			sub.Filter = ""
		}
	}
	if in.IncludeSubaccounts != nil {
		sub.IncludeSubaccounts = *in.IncludeSubaccounts
	}
	if in.Headers != nil {
		s.applyHeaders(*in.Headers, sub, errs)
	}
	if in.PayloadMode != nil {
		sub.PayloadMode = *in.PayloadMode
	}
	if sub.PayloadMode == "" {
		sub.PayloadMode = subscription.PayloadStructured
	}
	if in.Template != nil {
		sub.Template = *in.Template
	} else if sub.PayloadMode != subscription.PayloadTemplate {
		sub.Template = "" // left over from an earlier template mode
	}
	if in.RetryPolicy != nil {
		sub.RetryPolicy = *in.RetryPolicy
	}
	if sub.RetryPolicy == "" {
		sub.RetryPolicy = subscription.RetryDefault
	}
	if in.RateLimit != nil {
		sub.RateLimit = *in.RateLimit
	}
	if in.Status != nil {
		// Only Herald disables; a caller pauses or enables.
		if *in.Status != subscription.StatusEnabled && *in.Status != subscription.StatusPaused {
			errs.add("/status", "want enabled or paused")
		} else if *in.Status != sub.Status {
			sub.Status, sub.StatusReason = *in.Status, ""
		}
	}
	if sub.Status == "" {
		sub.Status = subscription.StatusEnabled
	}
	if in.Description != nil {
		sub.Description = *in.Description
	}
	if in.Metadata != nil {
		sub.Metadata = *in.Metadata
		if len(sub.Metadata) == 0 {
			sub.Metadata = nil
		}
	}
	if in.PropagateTrace != nil {
		sub.PropagateTrace = *in.PropagateTrace
	}
	if in.Auth != nil {
		s.applyAuth(*in.Auth, &sub.Auth, errs)
	} else if create {
		sub.Auth.Type = subscription.AuthNone
	}
}

// applyAuth replaces the auth settings with in, sealing its secrets and
// keeping a stored one that in leaves empty. It reports only what the plain
// text shows (credentials the type does not send, a token of more than one
// word, a client certificate that does not match its key); Validate checks
// the result.
func (s *Service) applyAuth(in authInput, a *subscription.Auth, errs *fieldErrors) {
	old := *a
	next := subscription.Auth{Secrets: old.Secrets, Type: in.Type}
	if next.Type == "" {
		next.Type = subscription.AuthNone
	}
	switch next.Type {
	case subscription.AuthNone:
		if in.Username != "" || in.Password != "" || in.Token != "" {
			errs.add("/auth/type", "set basic or bearer to send credentials")
		}
	case subscription.AuthBasic:
		next.Username = in.Username
		switch {
		case in.Password != "":
			next.PasswordSealed = s.keys.Seal(in.Password)
		case old.Type == subscription.AuthBasic && old.PasswordSealed != "":
			next.PasswordSealed = old.PasswordSealed
		}
		if in.Token != "" {
			errs.add("/auth/token", "only with bearer auth")
		}
	case subscription.AuthBearer:
		switch {
		case in.Token != "":
			if strings.ContainsAny(in.Token, "\r\n ") {
				errs.add("/auth/token", "must be one word")
			}
			next.TokenSealed = s.keys.Seal(in.Token)
		case old.Type == subscription.AuthBearer && old.TokenSealed != "":
			next.TokenSealed = old.TokenSealed
		}
		if in.Username != "" || in.Password != "" {
			errs.add("/auth/username", "only with basic auth")
		}
	}
	if in.Ed25519 {
		if old.Ed25519KeySealed != "" {
			next.Ed25519KeySealed, next.Ed25519Public = old.Ed25519KeySealed, old.Ed25519Public
		} else {
			priv, pub := webhook.NewKeyPair()
			next.Ed25519KeySealed, next.Ed25519Public = s.keys.Seal(priv), pub
		}
	}
	if in.ClientCert != "" || in.ClientKey != "" {
		key := in.ClientKey
		if key == "" && in.ClientCert == old.ClientCertPEM && old.ClientKeySealed != "" {
			if k, err := s.keys.Open(old.ClientKeySealed); err == nil {
				key = k
			}
		}
		switch {
		case in.ClientCert == "":
			errs.add("/auth/client_cert", "required with client_key")
		case key == "":
			errs.add("/auth/client_key", "required with client_cert")
		default:
			if _, err := tls.X509KeyPair([]byte(in.ClientCert), []byte(key)); err != nil {
				// The tls error names only PEM structure, never key bytes.
				errs.add("/auth/client_cert", "certificate and key do not form a valid pair: %s", err.Error())
			} else {
				next.ClientCertPEM, next.ClientKeySealed = in.ClientCert, s.keys.Seal(key)
			}
		}
	}
	next.CACertPEM = in.CACert
	*a = next
}

// newSecret makes an HMAC secret record and returns it with the plaintext.
func (s *Service) newSecret() (subscription.Secret, string) {
	plain := webhook.NewSecret()
	return subscription.Secret{ID: newID("sec"), Sealed: s.keys.Seal(plain), CreatedAt: s.now().UTC()}, plain
}

// reseal moves every sealed value made under an older operator key to the
// current one, so that after a key rotation the old key can be retired
// once every subscription has been written again.
func (s *Service) reseal(a *subscription.Auth) {
	fields := []*string{&a.Ed25519KeySealed, &a.PasswordSealed, &a.TokenSealed, &a.ClientKeySealed}
	for i := range a.Secrets {
		fields = append(fields, &a.Secrets[i].Sealed)
	}
	for _, f := range fields {
		if *f == "" || !s.keys.NeedsReseal(*f) {
			continue
		}
		if p, err := s.keys.Open(*f); err == nil {
			*f = s.keys.Seal(p)
		}
	}
}

// quota is the tenant's own limit, or the operator's default.
func (s *Service) quota(t tenancy.Tenant) int {
	if t.Settings.SubscriptionQuota > 0 {
		return t.Settings.SubscriptionQuota
	}
	return s.cfg.SubscriptionQuota
}

func (s *Service) createSubscription(w http.ResponseWriter, r *http.Request) {
	t, _, ok := s.tenantFor(w, r)
	if !ok {
		return
	}
	var in subInput
	if p := decodeJSON(w, r, &in); p != nil {
		problem.Write(w, r, p)
		return
	}
	now := s.now().UTC()
	sub := subscription.Subscription{ID: newID("sub"), Tenant: t.ID, CreatedAt: now, UpdatedAt: now}
	var errs fieldErrors
	s.apply(r.Context(), in, &sub, true, &errs)
	if p := errs.problem(); p != nil {
		problem.Write(w, r, p)
		return
	}
	sec, plain := s.newSecret()
	sub.Auth.Secrets = []subscription.Secret{sec}
	v := viewSub(sub)
	// createWithinQuota (quota.go) keeps the quota exact when creates race
	// and stores the change with the record (outbox.go).
	var eq *errQuota
	switch err := s.createWithinQuota(r.Context(), sub, s.newChange(r.Context(), t.ID, "subscription", sub.ID, "created", nil, v)); {
	case errors.As(err, &eq):
		problem.Write(w, r, quotaProblem(t.ID, eq.limit))
		return
	case errors.Is(err, errNotFound):
		problem.Write(w, r, problem.New(http.StatusNotFound, "tenant "+t.ID+" does not exist"))
		return
	case err != nil:
		internalError(w, r, s, "store subscription", err)
		return
	}
	s.log.InfoContext(r.Context(), "subscription created", "tenant", t.ID, "subscription_id", sub.ID)
	w.Header().Set("Location", "/v1/tenants/"+t.ID+"/subscriptions/"+sub.ID)
	writeJSON(w, http.StatusCreated, struct {
		subView
		Secret string `json:"secret"`
	}{v, plain})
}

func (s *Service) loadSub(ctx context.Context, tenant, id string) (subscription.Subscription, uint64, error) {
	var sub subscription.Subscription
	if contract.ValidateToken(id) != nil {
		return sub, 0, errNotFound
	}
	e, err := s.subKV().Get(ctx, subscription.Key(tenant, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return sub, 0, errNotFound
	}
	if err != nil {
		return sub, 0, err
	}
	sub, err = liveSub(id, e.Value())
	return sub, e.Revision(), err
}

// liveSub decodes a stored subscription record; one being deleted is
// errNotFound (the sweeper finishes it, outbox.go).
func liveSub(id string, b []byte) (subscription.Subscription, error) {
	var sub subscription.Subscription
	if err := json.Unmarshal(b, &sub); err != nil {
		return sub, fmt.Errorf("decode subscription %s: %w", id, err)
	}
	if pendingDelete(sub.Outbox) {
		return sub, errNotFound
	}
	return sub, nil
}

// subFor authorises and loads the path's subscription, writing 403/404.
func (s *Service) subFor(w http.ResponseWriter, r *http.Request) (subscription.Subscription, uint64, bool) {
	t, _, ok := s.tenantFor(w, r)
	if !ok {
		return subscription.Subscription{}, 0, false
	}
	id := r.PathValue("id")
	sub, rev, err := s.loadSub(r.Context(), t.ID, id)
	if errors.Is(err, errNotFound) {
		problem.Write(w, r, problem.New(http.StatusNotFound, "subscription "+id+" does not exist"))
		return sub, 0, false
	}
	if err != nil {
		internalError(w, r, s, "read subscription", err)
		return sub, 0, false
	}
	return sub, rev, true
}

func (s *Service) getSubscription(w http.ResponseWriter, r *http.Request) {
	if sub, _, ok := s.subFor(w, r); ok {
		writeJSON(w, http.StatusOK, viewSub(sub))
	}
}

// listSubscriptions pages through a tenant's subscriptions, filtered by
// ?status= and ?event= (subscriptions whose patterns match that type).
func (s *Service) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	t, _, ok := s.tenantFor(w, r)
	if !ok {
		return
	}
	pg, p := readPage(r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	status, ev := r.URL.Query().Get("status"), r.URL.Query().Get("event")
	entries, err := bus.ListEntries(r.Context(), s.js, s.subKV().Bucket(), t.ID+".*")
	if err != nil {
		internalError(w, r, s, "list subscriptions", err)
		return
	}
	out := listPage[subView]{Items: []subView{}}
	byKey := map[string]subscription.Subscription{}
	var match []string
	for _, e := range entries {
		k := e.Key
		sub, err := liveSub(k, e.Value)
		if err != nil {
			continue
		}
		if (status != "" && sub.Status != status) || (ev != "" && !sub.MatchesType(ev)) {
			continue
		}
		byKey[k] = sub
		match = append(match, k)
	}
	match, out.NextCursor = window(match, pg)
	for _, k := range match {
		out.Items = append(out.Items, viewSub(byKey[k]))
	}
	writeJSON(w, http.StatusOK, out)
}

// store writes sub with a compare-and-set on rev and records the change.
func (s *Service) store(w http.ResponseWriter, r *http.Request, before, sub subscription.Subscription, rev uint64, action string) bool {
	sub.UpdatedAt = s.now().UTC()
	s.reseal(&sub.Auth)
	s.sealHeaders(&sub)
	change := s.newChange(r.Context(), sub.Tenant, "subscription", sub.ID, action, viewSub(before), viewSub(sub))
	if err := s.write(r.Context(), s.subKV(), subscription.Key(sub.Tenant, sub.ID), rev, sub, before.Outbox, change); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			problem.Write(w, r, problem.New(http.StatusConflict, "the subscription changed meanwhile; read it and try again"))
			return false
		}
		internalError(w, r, s, "store subscription", err)
		return false
	}
	return true
}

func (s *Service) patchSubscription(w http.ResponseWriter, r *http.Request) {
	sub, rev, ok := s.subFor(w, r)
	if !ok {
		return
	}
	var in subInput
	if p := decodeJSON(w, r, &in); p != nil {
		problem.Write(w, r, p)
		return
	}
	if in.URL != nil && strings.TrimSpace(*in.URL) == sub.URL && (sub.OperatorAllowed || !s.mayUseAllowList(r.Context(), sub.Tenant)) {
		in.URL = nil // unchanged, and no grant to add: no need to resolve again
	}
	before := sub
	var errs fieldErrors
	s.apply(r.Context(), in, &sub, false, &errs)
	if p := errs.problem(); p != nil {
		problem.Write(w, r, p)
		return
	}
	if s.store(w, r, before, sub, rev, "updated") {
		writeJSON(w, http.StatusOK, viewSub(sub))
	}
}

func (s *Service) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	sub, rev, ok := s.subFor(w, r)
	if !ok {
		return
	}
	change := s.newChange(r.Context(), sub.Tenant, "subscription", sub.ID, "deleted", viewSub(sub), nil)
	if err := s.write(r.Context(), s.subKV(), subscription.Key(sub.Tenant, sub.ID), rev, sub, sub.Outbox, change); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			problem.Write(w, r, problem.New(http.StatusConflict, "the subscription changed meanwhile; try again"))
			return
		}
		internalError(w, r, s, "delete subscription", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) setStatus(status, action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sub, rev, ok := s.subFor(w, r)
		if !ok {
			return
		}
		before := sub
		sub.Status, sub.StatusReason = status, ""
		if s.store(w, r, before, sub, rev, action) {
			writeJSON(w, http.StatusOK, viewSub(sub))
		}
	}
}

func (s *Service) pauseSubscription(w http.ResponseWriter, r *http.Request) {
	s.setStatus(subscription.StatusPaused, "paused")(w, r)
}

// resumeSubscription also re-enables a subscription Herald disabled.
func (s *Service) resumeSubscription(w http.ResponseWriter, r *http.Request) {
	s.setStatus(subscription.StatusEnabled, "resumed")(w, r)
}

// rotateSecret makes a new current secret, returned once. The previous
// current secret keeps signing until now + RotationOverlap; secrets already
// expired are dropped.
func (s *Service) rotateSecret(w http.ResponseWriter, r *http.Request) {
	sub, rev, ok := s.subFor(w, r)
	if !ok {
		return
	}
	before := sub
	now := s.now().UTC()
	expires := now.Add(s.cfg.RotationOverlap)
	sec, plain := s.newSecret()
	kept := []subscription.Secret{sec}
	for _, old := range sub.Auth.ActiveSecrets(now) {
		if old.ExpiresAt == nil || old.ExpiresAt.After(expires) {
			old.ExpiresAt = &expires
		}
		kept = append(kept, old)
	}
	sub.Auth.Secrets = kept
	if !s.store(w, r, before, sub, rev, "rotated") {
		return
	}
	writeJSON(w, http.StatusOK, struct {
		subView
		Secret string `json:"secret"`
	}{viewSub(sub), plain})
}

// publicKey publishes the ed25519 public key receivers verify v1a with.
func (s *Service) publicKey(w http.ResponseWriter, r *http.Request) {
	sub, _, ok := s.subFor(w, r)
	if !ok {
		return
	}
	if sub.Auth.Ed25519Public == "" {
		problem.Write(w, r, problem.New(http.StatusNotFound, "subscription "+sub.ID+" does not sign with ed25519; set auth.ed25519"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"subscription_id": sub.ID, "algorithm": "ed25519", "signature_version": "v1a", "public_key": sub.Auth.Ed25519Public,
	})
}

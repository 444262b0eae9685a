package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/tenancy"
	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// The hierarchy: an account is a root; a sub-account belongs to an account
// or another sub-account; a project belongs to an account or a sub-account.
var allowedParents = map[string][]string{
	tenancy.KindAccount:    nil,
	tenancy.KindSubaccount: {tenancy.KindAccount, tenancy.KindSubaccount},
	tenancy.KindProject:    {tenancy.KindAccount, tenancy.KindSubaccount},
}

type tenantInput struct {
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	Kind     string         `json:"kind"`
	Parent   string         `json:"parent"`
	Settings *settingsInput `json:"settings"`
}

type tenantPatch struct {
	Name     *string        `json:"name"`
	Settings *settingsInput `json:"settings"`
}

// settingsInput is tenancy.Settings as a caller writes it: source passwords
// in clear (sealed before storing).
type settingsInput struct {
	SubscriptionQuota  int                         `json:"subscription_quota"`
	AllowUnknownTypes  bool                        `json:"allow_unknown_types"`
	IngestRateLimit    float64                     `json:"ingest_rate_limit"`
	SourceAuth         map[string]sourceAuthInput  `json:"source_auth"`
	Alerts             tenancy.AlertSettings       `json:"alerts"`
	OperationDeadlines map[string]tenancy.Duration `json:"operation_deadlines"`

	// Omitted keeps the stored value; only the operator may change it.
	AllowPrivateDestinations *bool `json:"allow_private_destinations"`
}

type sourceAuthInput struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type tenantView struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Kind      string       `json:"kind"`
	Parent    string       `json:"parent,omitempty"`
	Settings  settingsView `json:"settings"`
	CreatedAt string       `json:"created_at"`
	UpdatedAt string       `json:"updated_at"`
}

type settingsView struct {
	SubscriptionQuota  int                         `json:"subscription_quota,omitempty"`
	AllowUnknownTypes  bool                        `json:"allow_unknown_types,omitempty"`
	IngestRateLimit    float64                     `json:"ingest_rate_limit,omitempty"`
	SourceAuth         map[string]sourceAuthView   `json:"source_auth,omitempty"`
	Alerts             tenancy.AlertSettings       `json:"alerts"`
	OperationDeadlines map[string]tenancy.Duration `json:"operation_deadlines,omitempty"`

	AllowPrivateDestinations bool `json:"allow_private_destinations,omitempty"`
}

type sourceAuthView struct {
	Username    string `json:"username"`
	PasswordSet bool   `json:"password_set"`
}

func viewTenant(t tenancy.Tenant) tenantView {
	v := tenantView{
		ID: t.ID, Name: t.Name, Kind: t.Kind, Parent: t.Parent,
		CreatedAt: t.CreatedAt.UTC().Format(timeFormat), UpdatedAt: t.UpdatedAt.UTC().Format(timeFormat),
		Settings: settingsView{
			SubscriptionQuota: t.Settings.SubscriptionQuota, AllowUnknownTypes: t.Settings.AllowUnknownTypes,
			IngestRateLimit: t.Settings.IngestRateLimit, Alerts: t.Settings.Alerts,
			OperationDeadlines:       t.Settings.OperationDeadlines,
			AllowPrivateDestinations: t.Settings.AllowPrivateDestinations,
		},
	}
	if len(t.Settings.SourceAuth) > 0 {
		v.Settings.SourceAuth = map[string]sourceAuthView{}
		for k, a := range t.Settings.SourceAuth {
			v.Settings.SourceAuth[k] = sourceAuthView{Username: a.Username, PasswordSet: a.PasswordSealed != ""}
		}
	}
	return v
}

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// applySettings validates in and turns it into settings, keeping an
// existing sealed password when a source entry omits its password.
func (s *Service) applySettings(ctx context.Context, in *settingsInput, old tenancy.Settings, errs *fieldErrors) tenancy.Settings {
	if in == nil {
		return old
	}
	out := tenancy.Settings{
		SubscriptionQuota: in.SubscriptionQuota, AllowUnknownTypes: in.AllowUnknownTypes,
		IngestRateLimit: in.IngestRateLimit, Alerts: in.Alerts, OperationDeadlines: in.OperationDeadlines,
		AllowPrivateDestinations: applyPrivateDestinations(ctx, in.AllowPrivateDestinations, old.AllowPrivateDestinations, errs),
	}
	if in.SubscriptionQuota < 0 || in.SubscriptionQuota > 10000 {
		errs.add("/settings/subscription_quota", "want 0 (the operator default) to 10000")
	}
	if in.IngestRateLimit < 0 {
		errs.add("/settings/ingest_rate_limit", "must not be negative")
	}
	if in.Alerts.ReminderInterval < 0 {
		errs.add("/settings/alerts/reminder_interval", "must not be negative")
	}
	if in.Alerts.FlapWindow < 0 {
		errs.add("/settings/alerts/flap_window", "must not be negative")
	}
	for k, d := range in.OperationDeadlines {
		if d <= 0 {
			errs.add("/settings/operation_deadlines/"+k, "must be positive")
		}
	}
	for k, a := range in.SourceAuth {
		ptr := "/settings/source_auth/" + k
		if a.Username == "" {
			errs.add(ptr+"/username", "required")
		}
		sealed := ""
		switch prev, ok := old.SourceAuth[k]; {
		case a.Password != "":
			sealed = s.keys.Seal(a.Password)
		case ok:
			sealed = prev.PasswordSealed
		default:
			errs.add(ptr+"/password", "required")
		}
		if out.SourceAuth == nil {
			out.SourceAuth = map[string]tenancy.BasicAuth{}
		}
		out.SourceAuth[k] = tenancy.BasicAuth{Username: a.Username, PasswordSealed: sealed}
	}
	return out
}

func validName(name string) bool {
	return strings.TrimSpace(name) != "" && utf8.RuneCountInString(name) <= 200
}

func (s *Service) createTenant(w http.ResponseWriter, r *http.Request) {
	var in tenantInput
	if p := decodeJSON(w, r, &in); p != nil {
		problem.Write(w, r, p)
		return
	}
	var errs fieldErrors
	if err := contract.ValidateToken(in.ID); err != nil {
		errs.add("/id", "want 1-64 of [a-z0-9_-], starting with a letter or digit")
	}
	if !validName(in.Name) {
		errs.add("/name", "required, at most 200 characters")
	}
	// A missing kind follows from the parent: none makes an account, one a
	// sub-account. A kind that is given must agree with the parent.
	defaulted := ""
	if in.Kind == "" {
		in.Kind, defaulted = tenancy.KindAccount, " (the default kind without a parent)"
		if in.Parent != "" {
			in.Kind, defaulted = tenancy.KindSubaccount, " (the default kind with a parent; set kind to project for a project)"
		}
	}
	want, kindOK := allowedParents[in.Kind]
	if !kindOK {
		errs.add("/kind", "want account, subaccount or project (or omit it: account without a parent, subaccount with one)")
	}
	var parent tenancy.Tenant
	switch {
	case !kindOK:
	case in.Kind == tenancy.KindAccount && in.Parent != "":
		errs.add("/parent", "an account has no parent: omit parent, or set kind to subaccount or project")
	case in.Kind != tenancy.KindAccount && in.Parent == "":
		errs.add("/parent", "a %s needs a parent: name it, or omit kind to create an account", in.Kind)
	case in.Parent != "":
		var err error
		parent, _, err = s.loadTenant(r.Context(), in.Parent)
		switch {
		case errors.Is(err, errNotFound):
			errs.add("/parent", "tenant %s does not exist", in.Parent)
		case err != nil:
			internalError(w, r, s, "read parent tenant", err)
			return
		default:
			okParent := false
			for _, k := range want {
				okParent = okParent || parent.Kind == k
			}
			if !okParent {
				errs.add("/parent", "a %s%s cannot belong to a %s", in.Kind, defaulted, parent.Kind)
			}
		}
	}
	settings := s.applySettings(r.Context(), in.Settings, tenancy.Settings{}, &errs)
	if p := errs.problem(); p != nil {
		problem.Write(w, r, p)
		return
	}
	// Creating a root needs the admin; a child, a caller who may act for
	// the parent (its own tenant or one below it).
	pr, _ := apiauth.FromContext(r.Context())
	if in.Parent == "" && !pr.Admin {
		problem.Write(w, r, problem.New(http.StatusForbidden, "only the operator's admin token may create an account (a tenant without a parent)"))
		return
	}
	if in.Parent != "" && !apiauth.ForTenant(w, r, in.Parent) {
		return
	}
	now := s.now().UTC()
	t := tenancy.Tenant{ID: in.ID, Name: in.Name, Kind: in.Kind, Parent: in.Parent, Settings: settings, CreatedAt: now, UpdatedAt: now}
	v := viewTenant(t)
	change := s.newChange(r.Context(), t.ID, "tenant", t.ID, "created", nil, v)
	if err := s.write(r.Context(), s.tenantKV(), t.ID, 0, t, nil, change); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			problem.Write(w, r, problem.New(http.StatusConflict, "tenant "+t.ID+" already exists"))
			return
		}
		internalError(w, r, s, "store tenant", err)
		return
	}
	s.log.InfoContext(r.Context(), "tenant created", "tenant", t.ID, "kind", t.Kind)
	w.Header().Set("Location", "/v1/tenants/"+t.ID)
	writeJSON(w, http.StatusCreated, v)
}

var errNotFound = errors.New("not found")

func (s *Service) loadTenant(ctx context.Context, id string) (tenancy.Tenant, uint64, error) {
	var t tenancy.Tenant
	if contract.ValidateToken(id) != nil {
		return t, 0, errNotFound
	}
	e, err := s.tenantKV().Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return t, 0, errNotFound
	}
	if err != nil {
		return t, 0, err
	}
	t, err = liveTenant(id, e.Value())
	return t, e.Revision(), err
}

// liveTenant decodes a stored tenant record; one being deleted is
// errNotFound (the sweeper finishes it, outbox.go).
func liveTenant(id string, b []byte) (tenancy.Tenant, error) {
	t, err := decodeTenant(id, b)
	if err == nil && pendingDelete(t.Outbox) {
		err = errNotFound
	}
	return t, err
}

// tenantFor authorises and loads the path's tenant, writing the problem
// (403, 404) itself.
func (s *Service) tenantFor(w http.ResponseWriter, r *http.Request) (tenancy.Tenant, uint64, bool) {
	id := r.PathValue("tenant")
	if !apiauth.ForTenant(w, r, id) {
		return tenancy.Tenant{}, 0, false
	}
	t, rev, err := s.loadTenant(r.Context(), id)
	if errors.Is(err, errNotFound) {
		problem.Write(w, r, problem.New(http.StatusNotFound, "tenant "+id+" does not exist"))
		return t, 0, false
	}
	if err != nil {
		internalError(w, r, s, "read tenant", err)
		return t, 0, false
	}
	return t, rev, true
}

func (s *Service) getTenant(w http.ResponseWriter, r *http.Request) {
	if t, _, ok := s.tenantFor(w, r); ok {
		writeJSON(w, http.StatusOK, viewTenant(t))
	}
}

// listTenants lists the tenants the caller may see (all for the admin, its
// own for a tenant key), filtered by ?parent= and ?kind=.
func (s *Service) listTenants(w http.ResponseWriter, r *http.Request) {
	pg, p := readPage(r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	pr, _ := apiauth.FromContext(r.Context())
	all, err := s.allTenants(r.Context())
	if err != nil {
		internalError(w, r, s, "list tenants", err)
		return
	}
	parent, kind := r.URL.Query().Get("parent"), r.URL.Query().Get("kind")
	parents := make(map[string]string, len(all))
	for _, t := range all {
		parents[t.ID] = t.Parent
	}
	byID := map[string]tenancy.Tenant{}
	var keys []string
	for _, t := range all {
		if !visible(pr, t.ID, parents) || (parent != "" && t.Parent != parent) || (kind != "" && t.Kind != kind) {
			continue
		}
		byID[t.ID] = t
		keys = append(keys, t.ID)
	}
	keys, next := window(keys, pg)
	out := listPage[tenantView]{Items: []tenantView{}, NextCursor: next}
	for _, k := range keys {
		out.Items = append(out.Items, viewTenant(byID[k]))
	}
	writeJSON(w, http.StatusOK, out)
}

// visible is Principal.MayActFor over the tenants already read: the caller's
// own tenant and those below it.
func visible(pr apiauth.Principal, id string, parents map[string]string) bool {
	for range len(parents) + 1 {
		if pr.CanAccess(id) {
			return true
		}
		if pr.Tenant == "" || pr.Tree == nil || parents[id] == "" {
			return false
		}
		id = parents[id]
	}
	return false
}

func (s *Service) allTenants(ctx context.Context) ([]tenancy.Tenant, error) {
	entries, err := bus.ListEntries(ctx, s.js, s.tenantKV().Bucket(), "")
	if err != nil {
		return nil, err
	}
	out := make([]tenancy.Tenant, 0, len(entries))
	for _, e := range entries {
		t, err := liveTenant(e.Key, e.Value)
		if errors.Is(err, errNotFound) {
			continue // being deleted
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func (s *Service) patchTenant(w http.ResponseWriter, r *http.Request) {
	t, rev, ok := s.tenantFor(w, r)
	if !ok {
		return
	}
	var in tenantPatch
	if p := decodeJSON(w, r, &in); p != nil {
		problem.Write(w, r, p)
		return
	}
	var errs fieldErrors
	before := viewTenant(t)
	if in.Name != nil {
		if !validName(*in.Name) {
			errs.add("/name", "required, at most 200 characters")
		}
		t.Name = *in.Name
	}
	t.Settings = s.applySettings(r.Context(), in.Settings, t.Settings, &errs)
	if p := errs.problem(); p != nil {
		problem.Write(w, r, p)
		return
	}
	t.UpdatedAt = s.now().UTC()
	v := viewTenant(t)
	change := s.newChange(r.Context(), t.ID, "tenant", t.ID, "updated", before, v)
	if err := s.write(r.Context(), s.tenantKV(), t.ID, rev, t, t.Outbox, change); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			problem.Write(w, r, problem.New(http.StatusConflict, "the tenant changed meanwhile; read it and try again"))
			return
		}
		internalError(w, r, s, "store tenant", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// deleteTenant refuses (409) while the tenant has sub-tenants or
// subscriptions; ?cascade=true deletes the subtree, deepest first.
func (s *Service) deleteTenant(w http.ResponseWriter, r *http.Request) {
	t, _, ok := s.tenantFor(w, r)
	if !ok {
		return
	}
	cascade := r.URL.Query().Get("cascade") == "true"
	all, err := s.allTenants(r.Context())
	if err != nil {
		internalError(w, r, s, "list tenants", err)
		return
	}
	children := map[string][]string{}
	for _, x := range all {
		children[x.Parent] = append(children[x.Parent], x.ID)
	}
	// Post-order: descendants before their parents.
	var order []string
	var walk func(id string)
	walk = func(id string) {
		for _, c := range children[id] {
			walk(c)
		}
		order = append(order, id)
	}
	walk(t.ID)
	if !cascade {
		subs, err := s.listKeys(r.Context(), s.subKV(), t.ID+".*")
		if err != nil {
			internalError(w, r, s, "list subscriptions", err)
			return
		}
		if n := len(children[t.ID]); n > 0 || len(subs) > 0 {
			problem.Write(w, r, problem.New(http.StatusConflict, fmt.Sprintf(
				"tenant %s has %d sub-tenant(s) and %d subscription(s); delete them first or use ?cascade=true", t.ID, n, len(subs))))
			return
		}
	}
	for _, id := range order {
		subs, err := s.listKeys(r.Context(), s.subKV(), id+".*")
		if err != nil {
			internalError(w, r, s, "list subscriptions", err)
			return
		}
		for _, k := range subs {
			sub, rev, err := s.loadSub(r.Context(), id, k[len(id)+1:])
			if err != nil {
				continue
			}
			change := s.newChange(r.Context(), id, "subscription", sub.ID, "deleted", viewSub(sub), nil)
			if err := s.write(r.Context(), s.subKV(), k, rev, sub, sub.Outbox, change); err != nil {
				internalError(w, r, s, "delete subscription", err)
				return
			}
		}
		x, rev, err := s.loadTenant(r.Context(), id)
		if err != nil {
			continue
		}
		change := s.newChange(r.Context(), id, "tenant", id, "deleted", viewTenant(x), nil)
		if err := s.write(r.Context(), s.tenantKV(), id, rev, x, x.Outbox, change); err != nil {
			internalError(w, r, s, "delete tenant", err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

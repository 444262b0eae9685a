package collector

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/problem"
)

// sourceEvent is what an adapter reads from a raw webhook: the typed
// CloudEvent's attributes. The data is the webhook body itself, compacted.
type sourceEvent struct {
	typ, id, subject, action string
	time                     time.Time
}

// parseFunc reads one raw webhook body. Its ids are derived from the
// payload only, so that a re-posted webhook dedups.
type parseFunc func(body []byte, q url.Values) (sourceEvent, *problem.FieldError)

// adapters maps the {adapter} path segment to its parser.
var adapters = map[string]parseFunc{
	"vmanage":          parseVManage,
	"lmc":              parseLMC,
	"clc-account":      parseCLCAccount,
	"clc-user":         parseCLCUser,
	"clc-server":       parseCLCServer,
	"clc-alert":        parseCLCAlert,
	"device-operation": parseDeviceOperation,
}

func adapterNames() []string {
	names := make([]string, 0, len(adapters))
	for n := range adapters {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (s *Service) handleSource(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("adapter")
	parse, ok := adapters[name]
	if !ok {
		problem.Write(w, r, problem.New(http.StatusNotFound, fmt.Sprintf("no source adapter %q; adapters: %s", name, strings.Join(adapterNames(), ", "))))
		return
	}
	t, p := s.lookupTenant(r.Context(), r.PathValue("tenant"))
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	body, p := s.readBody(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	e, fe := adapt(t.ID, name, parse, body, r.URL.Query())
	if fe != nil {
		problem.Write(w, r, problem.Invalid("the "+name+" payload is invalid", *fe))
		return
	}
	s.ingest(w, r, t, []item{{ev: e}}, false)
}

// adapt turns a raw webhook into a CloudEvent. The source names the tenant
// and adapter, so that equal payloads of two tenants never dedup together.
func adapt(tenant, name string, parse parseFunc, body []byte, q url.Values) (event.Event, *problem.FieldError) {
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		return event.Event{}, &problem.FieldError{Pointer: "", Detail: "the body is not JSON: " + err.Error()}
	}
	se, fe := parse(compact.Bytes(), q)
	if fe != nil {
		return event.Event{}, fe
	}
	e := event.New()
	e.SetID(se.id)
	e.SetSource("/v1/tenants/" + tenant + "/sources/" + name)
	e.SetType(se.typ)
	e.SetSubject(se.subject)
	if se.time.IsZero() {
		se.time = time.Now()
	}
	e.SetTime(se.time.UTC())
	if se.action != "" {
		e.SetExtension(payload.ExtensionAction, se.action)
	}
	e.SetDataContentType("application/json")
	e.DataEncoded = compact.Bytes()
	return e, nil
}

// sourceAuth lets a source that can only send HTTP basic auth (vManage)
// post with the credentials configured for it on the tenant
// (Settings.SourceAuth[adapter], password sealed). Requests without basic
// auth go through the API authenticators.
func (s *Service) sourceAuth(next http.Handler) http.Handler {
	api := apiauth.Require(next, s.auth)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok {
			api.ServeHTTP(w, r)
			return
		}
		tenant, adapter := r.PathValue("tenant"), r.PathValue("adapter")
		t, p := s.lookupTenant(r.Context(), tenant)
		if p != nil && p.Status != http.StatusNotFound {
			problem.Write(w, r, p)
			return
		}
		cred, found := t.Settings.SourceAuth[adapter]
		if p == nil && found && s.keyring != nil {
			want, err := s.keyring.Open(cred.PasswordSealed)
			if err == nil && subtle.ConstantTimeCompare([]byte(user), []byte(cred.Username)) == 1 &&
				subtle.ConstantTimeCompare([]byte(pass), []byte(want)) == 1 {
				pr := apiauth.Principal{Actor: "source:" + tenant + "/" + adapter, Tenant: tenant}
				next.ServeHTTP(w, r.WithContext(apiauth.WithPrincipal(r.Context(), pr)))
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="herald"`)
		problem.Write(w, r, problem.New(http.StatusUnauthorized, "invalid basic credentials for source "+adapter))
	})
}

func contentID(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:8])
}

func missing(field string) *problem.FieldError {
	return &problem.FieldError{Pointer: "/" + field, Detail: "required"}
}

func decodeInto(body []byte, v any) *problem.FieldError {
	if err := json.Unmarshal(body, v); err != nil {
		return &problem.FieldError{Pointer: "", Detail: "unexpected shape: " + err.Error()}
	}
	return nil
}

// parseVManage: one event per alarm state; the id is uuid plus whether the
// alarm is active, so the raise and the clear of one alarm are two events.
func parseVManage(body []byte, _ url.Values) (sourceEvent, *problem.FieldError) {
	var a struct {
		UUID        string `json:"uuid"`
		Active      *bool  `json:"active"`
		ReceiveTime int64  `json:"receive_time"`
	}
	if fe := decodeInto(body, &a); fe != nil {
		return sourceEvent{}, fe
	}
	if a.UUID == "" {
		return sourceEvent{}, missing("uuid")
	}
	if a.Active == nil {
		return sourceEvent{}, missing("active")
	}
	state := "cleared"
	if *a.Active {
		state = "active"
	}
	se := sourceEvent{typ: payload.TypeVManageAlarm, id: a.UUID + "/" + state, subject: a.UUID}
	if a.ReceiveTime > 0 {
		se.time = time.UnixMilli(a.ReceiveTime)
	}
	return se, nil
}

func parseLMC(body []byte, _ url.Values) (sourceEvent, *problem.FieldError) {
	var a payload.LMCAlert
	if fe := decodeInto(body, &a); fe != nil {
		return sourceEvent{}, fe
	}
	if a.AlertID == "" {
		return sourceEvent{}, missing("alertId")
	}
	se := sourceEvent{typ: payload.TypeLMCAlert, id: a.AlertID + "/" + a.State + "/" + contentID(body), subject: a.AlertID}
	if t, err := time.Parse(time.RFC3339, a.StateUpdatedAt); err == nil {
		se.time = t
	}
	return se, nil
}

// action reads ?action=created|updated|deleted, the change kind that the
// cloud provider's webhook URL is configured with.
func action(q url.Values) (string, *problem.FieldError) {
	switch a := q.Get("action"); a {
	case payload.ActionCreated, payload.ActionUpdated, payload.ActionDeleted:
		return a, nil
	case "":
		return "", &problem.FieldError{Pointer: "query:action", Detail: "required: created, updated or deleted"}
	default:
		return "", &problem.FieldError{Pointer: "query:action", Detail: fmt.Sprintf("%q: want created, updated or deleted", a)}
	}
}

func parseCLCAccount(body []byte, q url.Values) (sourceEvent, *problem.FieldError) {
	var a payload.CLCAccount
	if fe := decodeInto(body, &a); fe != nil {
		return sourceEvent{}, fe
	}
	act, fe := action(q)
	if fe != nil {
		return sourceEvent{}, fe
	}
	if a.AccountAlias == "" {
		return sourceEvent{}, missing("accountAlias")
	}
	return sourceEvent{typ: payload.TypeCLCAccount, action: act, subject: a.AccountAlias,
		id: "account/" + act + "/" + a.AccountAlias + "/" + contentID(body)}, nil
}

func parseCLCUser(body []byte, q url.Values) (sourceEvent, *problem.FieldError) {
	var u payload.CLCUser
	if fe := decodeInto(body, &u); fe != nil {
		return sourceEvent{}, fe
	}
	act, fe := action(q)
	if fe != nil {
		return sourceEvent{}, fe
	}
	if u.UserName == "" {
		return sourceEvent{}, missing("userName")
	}
	return sourceEvent{typ: payload.TypeCLCUser, action: act, subject: u.UserName,
		id: "user/" + act + "/" + u.UserName + "/" + contentID(body)}, nil
}

// parseCLCServer: a delete carries only accountAlias and name, so such a
// body without ?action is taken as a delete.
func parseCLCServer(body []byte, q url.Values) (sourceEvent, *problem.FieldError) {
	var srv struct {
		Name       string `json:"name"`
		ChangeInfo struct {
			ModifiedDate string `json:"modifiedDate"`
		} `json:"changeInfo"`
	}
	if fe := decodeInto(body, &srv); fe != nil {
		return sourceEvent{}, fe
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(body, &fields)
	act, fe := action(q)
	if fe != nil {
		_, alias := fields["accountAlias"]
		if q.Get("action") != "" || len(fields) != 2 || !alias {
			return sourceEvent{}, fe
		}
		act = payload.ActionDeleted
	}
	if srv.Name == "" {
		return sourceEvent{}, missing("name")
	}
	se := sourceEvent{typ: payload.TypeCLCServer, action: act, subject: srv.Name,
		id: "server/" + act + "/" + srv.Name + "/" + contentID(body)}
	if t, err := time.Parse(time.RFC3339, srv.ChangeInfo.ModifiedDate); err == nil && act != payload.ActionDeleted {
		se.time = t
	}
	return se, nil
}

func parseCLCAlert(body []byte, _ url.Values) (sourceEvent, *problem.FieldError) {
	var a struct {
		ServerName string `json:"serverName"`
	}
	if fe := decodeInto(body, &a); fe != nil {
		return sourceEvent{}, fe
	}
	if a.ServerName == "" {
		return sourceEvent{}, missing("serverName")
	}
	return sourceEvent{typ: payload.TypeCLCAlert, subject: a.ServerName, id: "alert/" + a.ServerName + "/" + contentID(body)}, nil
}

// parseDeviceOperation tells a request from a result by ?kind=request|result
// or, without it, by the fields: a result has "status", a request has
// "operation". The protocol UUID may be spelled "protocolo" or "protocol".
func parseDeviceOperation(body []byte, q url.Values) (sourceEvent, *problem.FieldError) {
	var op struct {
		Protocol  string `json:"protocol"`
		Protocolo string `json:"protocolo"`
		Status    string `json:"status"`
		Operation string `json:"operation"`
	}
	if fe := decodeInto(body, &op); fe != nil {
		return sourceEvent{}, fe
	}
	kind := q.Get("kind")
	switch {
	case kind == "request" || kind == "result":
	case kind != "":
		return sourceEvent{}, &problem.FieldError{Pointer: "query:kind", Detail: fmt.Sprintf("%q: want request or result", kind)}
	case op.Status != "":
		kind = "result"
	case op.Operation != "":
		kind = "request"
	default:
		return sourceEvent{}, &problem.FieldError{Pointer: "", Detail: `cannot tell a request from a result: send ?kind=request|result, "operation" (request) or "status" (result)`}
	}
	proto := op.Protocolo
	if proto == "" {
		proto = op.Protocol
	}
	if proto == "" {
		return sourceEvent{}, missing("protocolo")
	}
	if kind == "request" {
		return sourceEvent{typ: payload.TypeOperationRequest, subject: proto, id: "request/" + proto}, nil
	}
	if op.Status == "" {
		return sourceEvent{}, missing("status")
	}
	return sourceEvent{typ: payload.TypeOperationResultRaw, subject: proto, id: "result/" + proto + "/" + op.Status}, nil
}

package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/engine/alertfsm"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/tenancy"
	"github.com/heraldhq/herald/services/internal/transport/bus"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// eventKey is the input's identity, as the collector's Nats-Msg-Id:
// hex(sha256(source + "\n" + id)).
func eventKey(e event.Event) string {
	h := sha256.Sum256([]byte(e.Source() + "\n" + e.ID()))
	return hex.EncodeToString(h[:])
}

func (s *Service) handleEvent(ctx context.Context, msg jetstream.Msg) error {
	e, err := cenats.Decode(msg.Headers(), msg.Data())
	if err != nil {
		return bus.Permanent(err)
	}
	tenant, ok := contract.TenantFromSubject(msg.Subject())
	if !ok || contract.ValidateToken(tenant) != nil {
		return bus.Permanent(fmt.Errorf("event %s: no tenant in subject %q", e.ID(), msg.Subject()))
	}
	id := eventKey(e)
	at := e.Time().UTC()
	switch e.Type() {
	case typeVManageAlarm, typeCLCAlert, typeLMCAlert:
		t, err := s.tenant(ctx, tenant)
		if err != nil {
			return err
		}
		var sigs []alertfsm.Signal
		switch e.Type() {
		case typeVManageAlarm:
			sigs, err = vmanageSignals(id, at, e.Data(), t.Settings.Alerts.KeyFields[typeVManageAlarm])
		case typeCLCAlert:
			sigs, err = clcSignals(id, at, e.Data())
		default:
			sigs, err = lmcSignals(id, at, e.Data())
		}
		if err != nil {
			return bus.Permanent(fmt.Errorf("event %s: %w", e.ID(), err))
		}
		for _, sig := range sigs {
			if err := s.applyAlert(ctx, t, sig); err != nil {
				return err
			}
		}
		return nil
	case typeOpRequested:
		return s.handleRequest(ctx, tenant, id, at, e)
	case typeOpResult:
		return s.handleResult(ctx, tenant, id, at, e)
	case typeCLCAccount, typeCLCUser, typeCLCServer:
		return s.handleResource(ctx, tenant, id, e)
	default:
		return s.passthrough(ctx, tenant, id, e, e.Type(), e.Subject(), e.Data())
	}
}

func tenantAccount(t tenancy.Tenant) string {
	if t.Parent != "" {
		return t.Parent
	}
	return t.ID
}

// tenant reads the tenant's settings; an unknown tenant, or no tenants
// bucket yet, gives the defaults.
func (s *Service) tenant(ctx context.Context, id string) (tenancy.Tenant, error) {
	def := tenancy.Tenant{ID: id}
	kv := s.tenants.Load()
	if kv == nil {
		b, err := s.js.KeyValue(ctx, contract.BucketTenants)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return def, nil
		}
		if err != nil {
			return def, fmt.Errorf("open tenants bucket: %w", err)
		}
		kv = &b
		s.tenants.Store(kv)
	}
	e, err := (*kv).Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return def, nil
	}
	if err != nil {
		return def, fmt.Errorf("read tenant %s: %w", id, err)
	}
	var t tenancy.Tenant
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		s.log.WarnContext(ctx, "undecodable tenant record; using defaults", "tenant", id, "error", err)
		return def, nil
	}
	t.ID = id
	return t, nil
}

func alertOptions(t tenancy.Tenant) alertfsm.Options {
	return alertfsm.Options{Tenant: t.ID, ProjectID: t.ID, AccountID: tenantAccount(t),
		NotifyImproved: t.Settings.Alerts.NotifyImproved, FlapWindow: time.Duration(t.Settings.Alerts.FlapWindow)}
}

func (s *Service) applyAlert(ctx context.Context, t tenancy.Tenant, sig alertfsm.Signal) error {
	o := alertOptions(t)
	return s.transactAlert(ctx, t, recordKey(t.ID, sig.Key), func(a *alertfsm.Alert) (bool, []alertfsm.Notification) {
		return alertfsm.Apply(a, sig, o)
	})
}

// transactAlert runs one alert transition. With reminders on, publishing
// alert.opened or alert.reminder arms the next reminder; a flap-timer
// request arms the timer that sends the held resolve.
func (s *Service) transactAlert(ctx context.Context, t tenancy.Tenant, key string, apply func(*alertfsm.Alert) (bool, []alertfsm.Notification)) error {
	every := time.Duration(t.Settings.Alerts.ReminderInterval)
	tok := strings.TrimPrefix(key, t.ID+".")
	return transact(ctx, s.alerts, key,
		func(a *alertfsm.Alert) *[]alertfsm.Notification { return &a.Pending },
		apply,
		func(ctx context.Context, n alertfsm.Notification) error {
			if n.Type == alertfsm.TypeFlapTimer {
				var d struct{ AlertID, HeldEvent string }
				if err := json.Unmarshal(n.Data, &d); err != nil {
					return err
				}
				window := max(time.Duration(t.Settings.Alerts.FlapWindow), time.Second)
				return s.schedule(ctx, typeTimerFlap, timerFlap, tok, n.ID, timerData{
					Tenant: t.ID, Record: key, AlertID: d.AlertID, HeldEvent: d.HeldEvent, Deadline: time.Now().Add(window),
				})
			}
			if err := s.publishNotification(ctx, t.ID, n); err != nil {
				return err
			}
			if every <= 0 || (n.Type != payload.TypeAlertOpened && n.Type != payload.TypeAlertReminder) {
				return nil
			}
			var a payload.Alert
			if err := json.Unmarshal(n.Data, &a); err != nil {
				return err
			}
			next := 1
			if n.Type == payload.TypeAlertReminder {
				next = a.Reminder + 1
			}
			return s.schedule(ctx, typeTimerReminder, timerReminder, tok, n.ID, timerData{
				Tenant: t.ID, Record: key, AlertID: a.AlertID, N: next, Deadline: time.Now().Add(every).Truncate(time.Second),
			})
		})
}

// remind handles a fired reminder timer.
func (s *Service) remind(ctx context.Context, d timerData) error {
	t, err := s.tenant(ctx, d.Tenant)
	if err != nil {
		return err
	}
	if t.Settings.Alerts.ReminderInterval <= 0 || !strings.HasPrefix(d.Record, d.Tenant+".") {
		return nil // reminders were switched off since
	}
	o := alertOptions(t)
	return s.transactAlert(ctx, t, d.Record, func(a *alertfsm.Alert) (bool, []alertfsm.Notification) {
		return alertfsm.Remind(a, d.AlertID, d.N, d.Deadline, o)
	})
}

// resolveHeld handles a fired flap timer: the held resolve goes out unless
// the alert failed again within the window.
func (s *Service) resolveHeld(ctx context.Context, d timerData) error {
	t, err := s.tenant(ctx, d.Tenant)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(d.Record, d.Tenant+".") {
		return bus.Permanent(fmt.Errorf("flap timer for %s names record %s", d.Tenant, d.Record))
	}
	o := alertOptions(t)
	return s.transactAlert(ctx, t, d.Record, func(a *alertfsm.Alert) (bool, []alertfsm.Notification) {
		return alertfsm.ResolveHeld(a, d.AlertID, d.HeldEvent, o)
	})
}

// passthrough republishes an event as a notification of the given type,
// with a deterministic id and the source event id as causationid.
func (s *Service) passthrough(ctx context.Context, tenant, eventID string, in event.Event, typ, subject string, data []byte) error {
	if err := contract.ValidateType(typ); err != nil {
		return bus.Permanent(err)
	}
	e := event.New()
	id := alertfsm.NotificationID("passthrough", tenant, eventID, typ)
	e.SetID(id)
	e.SetSource(in.Source())
	e.SetType(typ)
	if subject != "" {
		e.SetSubject(subject)
	}
	e.SetTime(in.Time())
	if in.Time().IsZero() {
		e.SetTime(time.Unix(0, 0).UTC())
	}
	if in.DataSchema() != "" && typ == in.Type() {
		e.SetDataSchema(in.DataSchema())
	}
	for k, v := range in.Extensions() {
		if k != "traceparent" && k != "tracestate" {
			e.SetExtension(k, v)
		}
	}
	e.SetExtension("tenant", tenant)
	e.SetExtension("causationid", in.ID())
	if data != nil {
		ct := in.DataContentType()
		if ct == "" {
			ct = event.ApplicationJSON
		}
		e.SetDataContentType(ct)
		e.DataEncoded = data
	}
	_, err := bus.PublishEvent(ctx, s.notifications, contract.NotificationSubject(tenant, typ), id, e)
	if err == nil {
		s.metrics.Notified(ctx, e.Type())
	}
	return err
}

// handleResource turns clc.account|user|server into account|user|server.<action>.
// Created and updated carry the full payload (links included); deleted
// carries only the identity.
func (s *Service) handleResource(ctx context.Context, tenant, eventID string, e event.Event) error {
	kind := map[string]string{typeCLCAccount: payload.ResourceAccount, typeCLCUser: payload.ResourceUser, typeCLCServer: payload.ResourceServer}[e.Type()]
	action, _ := e.Extensions()[payload.ExtensionAction].(string)
	switch action {
	case payload.ActionCreated, payload.ActionUpdated, payload.ActionDeleted:
	case "":
		action = payload.ActionUpdated
	default:
		return bus.Permanent(fmt.Errorf("event %s: action %q: want created, updated or deleted", e.ID(), action))
	}
	var raw struct {
		AccountAlias string         `json:"accountAlias"`
		ID           string         `json:"id"`
		Name         string         `json:"name"`
		UserName     string         `json:"userName"`
		URI          string         `json:"uri"`
		Links        []payload.Link `json:"links"`
	}
	if err := json.Unmarshal(e.Data(), &raw); err != nil {
		return bus.Permanent(fmt.Errorf("decode %s %s: %w", e.Type(), e.ID(), err))
	}
	id := map[string]string{
		payload.ResourceAccount: raw.AccountAlias,
		payload.ResourceUser:    firstNonEmpty(raw.UserName, raw.URI),
		payload.ResourceServer:  firstNonEmpty(raw.ID, raw.Name),
	}[kind]
	if id == "" {
		return bus.Permanent(fmt.Errorf("%s %s: no resource identity", e.Type(), e.ID()))
	}
	data := e.Data()
	if action == payload.ActionDeleted {
		var self []payload.Link
		for _, l := range raw.Links {
			if l.Rel == "self" {
				self = append(self, l)
			}
		}
		b, err := json.Marshal(payload.ResourceIdentity{Kind: kind, ID: id, AccountAlias: raw.AccountAlias, Links: self})
		if err != nil {
			return err
		}
		data = b
	}
	return s.passthrough(ctx, tenant, eventID, e, kind+"."+action, id, data)
}

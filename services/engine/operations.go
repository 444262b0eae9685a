package engine

import (
	"context"
	"encoding/json"
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

// Timer kinds in TIMERS subjects.
const (
	timerOperation = "operation"
	timerReminder  = "reminder"
	timerFlap      = "flap"
)

// CloudEvent types of the timer messages on TIMERS.
const (
	typeTimerOperation = "herald.timer.operation"
	typeTimerReminder  = "herald.timer.reminder"
	typeTimerFlap      = alertfsm.TypeFlapTimer
)

// timerData is the data of a timer message.
type timerData struct {
	Tenant   string    `json:"tenant"`
	Protocol string    `json:"protocol,omitempty"` // operation deadline
	Deadline time.Time `json:"deadline"`           // when it is due
	Record   string    `json:"record,omitempty"`   // reminder: the alert's KV key
	AlertID  string    `json:"alertId,omitempty"`  // reminder: the alert life it belongs to
	N        int       `json:"n,omitempty"`        // reminder number
	// HeldEvent is the flap timer's held resolving input.
	HeldEvent string `json:"heldEvent,omitempty"`
}

// opToken is the operation's KV key suffix and timer subject token.
func opToken(protocol string) string {
	k := recordKey("", strings.ToLower(protocol))
	return k[1:]
}

// deadline picks the operation's time budget: the engine override, else the
// request's own timeout, else the tenant's per-kind or "*" setting, else the
// engine default.
func (s *Service) deadline(t tenancy.Tenant, kind, requested string) time.Duration {
	if s.cfg.DeadlineOverride > 0 {
		return s.cfg.DeadlineOverride
	}
	if d, err := time.ParseDuration(requested); err == nil && d > 0 {
		return d
	}
	for _, k := range []string{kind, "*"} {
		if d, ok := t.Settings.OperationDeadlines[k]; ok && d > 0 {
			return time.Duration(d)
		}
	}
	return s.cfg.OperationDeadline
}

func (s *Service) handleRequest(ctx context.Context, tenant, eventID string, at time.Time, e event.Event) error {
	var r payload.DeviceOperationRequest
	if err := json.Unmarshal(e.Data(), &r); err != nil {
		return bus.Permanent(fmt.Errorf("decode %s %s: %w", e.Type(), e.ID(), err))
	}
	proto := strings.ToLower(firstNonEmpty(r.ProtocolID(), e.Subject()))
	if proto == "" {
		return bus.Permanent(fmt.Errorf("%s %s: no protocol UUID", e.Type(), e.ID()))
	}
	t, err := s.tenant(ctx, tenant)
	if err != nil {
		return err
	}
	req := alertfsm.Request{EventID: eventID, Time: at, Protocol: proto, Device: r.RouterID,
		Kind: r.Operation, Deadline: at.Add(s.deadline(t, r.Operation, r.Timeout))}
	return s.applyOperation(ctx, tenant, proto, func(op *alertfsm.Operation) (bool, []alertfsm.Notification) {
		return alertfsm.ApplyRequest(op, req, tenant)
	})
}

func (s *Service) handleResult(ctx context.Context, tenant, eventID string, at time.Time, e event.Event) error {
	var r payload.DeviceOperationResult
	if err := json.Unmarshal(e.Data(), &r); err != nil {
		return bus.Permanent(fmt.Errorf("decode %s %s: %w", e.Type(), e.ID(), err))
	}
	proto := strings.ToLower(firstNonEmpty(r.ProtocolID(), e.Subject()))
	if proto == "" {
		return bus.Permanent(fmt.Errorf("%s %s: no protocol UUID", e.Type(), e.ID()))
	}
	status := strings.ToLower(r.Status)
	res := alertfsm.Result{EventID: eventID, Time: at, Protocol: proto, Device: r.RouterID,
		Success: status == "success" || status == "succeeded" || status == "ok", Status: r.Status}
	return s.applyOperation(ctx, tenant, proto, func(op *alertfsm.Operation) (bool, []alertfsm.Notification) {
		return alertfsm.ApplyResult(op, res, tenant)
	})
}

// applyOperation runs one operation transition. Publishing operation.requested
// also arms its deadline timer, so a flushed pending request re-arms it too.
func (s *Service) applyOperation(ctx context.Context, tenant, proto string, apply func(*alertfsm.Operation) (bool, []alertfsm.Notification)) error {
	var deadline time.Time
	return transact(ctx, s.ops, tenant+"."+opToken(proto),
		func(op *alertfsm.Operation) *[]alertfsm.Notification { return &op.Pending },
		func(op *alertfsm.Operation) (bool, []alertfsm.Notification) {
			changed, out := apply(op)
			if op.Deadline != nil {
				deadline = *op.Deadline
			}
			return changed, out
		},
		func(ctx context.Context, n alertfsm.Notification) error {
			if err := s.publishNotification(ctx, tenant, n); err != nil {
				return err
			}
			if n.Type != payload.TypeOperationRequested {
				return nil
			}
			var d payload.Operation
			if err := json.Unmarshal(n.Data, &d); err == nil && d.Deadline != nil {
				deadline = *d.Deadline
			}
			return s.armTimer(ctx, tenant, proto, n.ID, deadline)
		})
}

// armTimer publishes a scheduled message that the server delivers to
// timers.<tenant>.operation.<protocol> at the deadline.
func (s *Service) armTimer(ctx context.Context, tenant, proto, causeID string, deadline time.Time) error {
	return s.schedule(ctx, typeTimerOperation, timerOperation, opToken(proto), causeID,
		timerData{Tenant: tenant, Protocol: proto, Deadline: deadline})
}

// schedule publishes one timer: a scheduled message on
// timer-schedules.<tenant>.<kind>.<token> (one per subject: a newer timer
// replaces the older) that the server republishes on
// timers.<tenant>.<kind>.<token> at d.Deadline, where handleTimer gets it.
func (s *Service) schedule(ctx context.Context, typ, kind, tok, causeID string, d timerData) error {
	fire := d.Deadline
	if min := time.Now().Add(time.Second); fire.Before(min) {
		fire = min // the server refuses a schedule in the past
	}
	e := event.New()
	id := alertfsm.NotificationID("timer", causeID)
	e.SetID(id)
	e.SetSource(source)
	e.SetType(typ)
	e.SetSubject(tok)
	e.SetTime(d.Deadline)
	e.SetExtension("tenant", d.Tenant)
	if err := e.SetData(event.ApplicationJSON, d); err != nil {
		return err
	}
	_, err := bus.PublishEvent(ctx, s.js, contract.TimerScheduleSubject(d.Tenant, kind, tok), id, e,
		jetstream.WithScheduleAt(fire), jetstream.WithScheduleTarget(contract.TimerSubject(d.Tenant, kind, tok)))
	if err != nil {
		return fmt.Errorf("arm %s timer %s: %w", kind, tok, err)
	}
	return nil
}

// handleTimer processes a fired deadline: operation.timed_out, once, by CAS
// on the operation record, whichever instance gets the message.
func (s *Service) handleTimer(ctx context.Context, msg jetstream.Msg) error {
	e, err := cenats.Decode(msg.Headers(), msg.Data())
	if err != nil {
		return bus.Permanent(err)
	}
	var d timerData
	if err := e.DataAs(&d); err != nil || contract.ValidateToken(d.Tenant) != nil {
		return bus.Permanent(fmt.Errorf("timer %s: bad data: %v", e.ID(), err))
	}
	// Schedules fire with 1s granularity, sometimes a little early.
	if early := time.Until(d.Deadline); early > 0 {
		return &bus.RetryAfterError{Delay: early + 10*time.Millisecond, Err: fmt.Errorf("timer %s fired early", e.ID())}
	}
	switch e.Type() {
	case typeTimerReminder:
		return s.remind(ctx, d)
	case typeTimerFlap:
		return s.resolveHeld(ctx, d)
	}
	if d.Protocol == "" {
		return bus.Permanent(fmt.Errorf("timer %s: no protocol", e.ID()))
	}
	return s.applyOperation(ctx, d.Tenant, d.Protocol, func(op *alertfsm.Operation) (bool, []alertfsm.Notification) {
		return alertfsm.Expire(op, d.Tenant)
	})
}

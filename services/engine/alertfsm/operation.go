package alertfsm

import (
	"slices"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/payload"
)

// Operation is the stored state of one asynchronous device operation, keyed
// by its protocol UUID. One KV record.
type Operation struct {
	Protocol    string         `json:"protocol"`
	Device      string         `json:"device,omitempty"`
	Kind        string         `json:"kind,omitempty"`
	State       string         `json:"state,omitempty"` // "" until requested or resulted
	RequestedAt *time.Time     `json:"requestedAt,omitempty"`
	Deadline    *time.Time     `json:"deadline,omitempty"`
	CompletedAt *time.Time     `json:"completedAt,omitempty"`
	TimedOut    bool           `json:"timedOut,omitempty"`
	Status      string         `json:"status,omitempty"`
	Seq         uint64         `json:"seq"`
	EventIDs    []string       `json:"eventIds,omitempty"`
	Processed   []string       `json:"processed,omitempty"`
	Pending     []Notification `json:"pending,omitempty"`
}

// Request is a device.operation.requested input.
type Request struct {
	EventID  string
	Time     time.Time
	Protocol string
	Device   string
	Kind     string
	Deadline time.Time
}

// Result is a device.operation.result input.
type Result struct {
	EventID  string
	Time     time.Time
	Protocol string
	Device   string
	Success  bool
	Status   string
}

// ApplyRequest registers the operation. A request for a protocol that
// already has a result (the result overtook the request) only records the
// deadline; it emits nothing and arms no timer.
func ApplyRequest(op *Operation, r Request, tenant string) (changed bool, out []Notification) {
	if slices.Contains(op.Processed, r.EventID) || op.RequestedAt != nil {
		return false, nil
	}
	op.Processed = remember(op.Processed, r.EventID)
	op.Protocol = r.Protocol
	if r.Device != "" {
		op.Device = r.Device
	}
	op.Kind = r.Kind
	t, d := r.Time, r.Deadline
	op.RequestedAt, op.Deadline = &t, &d
	if op.State != "" {
		return true, nil
	}
	op.State = payload.OperationRequested
	op.EventIDs = remember(op.EventIDs, r.EventID)
	return true, []Notification{op.notify(payload.TypeOperationRequested, r.EventID, r.Time, tenant, false)}
}

// ApplyResult records the operation's result. A result after the timeout is
// still reported, marked late; a second result is ignored.
func ApplyResult(op *Operation, r Result, tenant string) (changed bool, out []Notification) {
	if slices.Contains(op.Processed, r.EventID) {
		return false, nil
	}
	op.Processed = remember(op.Processed, r.EventID)
	if op.CompletedAt != nil {
		return true, nil
	}
	op.Protocol = r.Protocol
	if op.Device == "" {
		op.Device = r.Device
	}
	t := r.Time
	op.CompletedAt = &t
	op.Status = r.Status
	op.State = payload.OperationFailed
	typ := payload.TypeOperationFailed
	if r.Success {
		op.State, typ = payload.OperationSucceeded, payload.TypeOperationSucceeded
	}
	op.EventIDs = remember(op.EventIDs, r.EventID)
	return true, []Notification{op.notify(typ, r.EventID, r.Time, tenant, op.TimedOut)}
}

// Expire fires the deadline timer. It emits operation.timed_out exactly
// once, and only while the operation is still waiting for its result.
func Expire(op *Operation, tenant string) (changed bool, out []Notification) {
	if op.State != payload.OperationRequested || op.TimedOut || op.Deadline == nil {
		return false, nil
	}
	op.TimedOut = true
	op.State = payload.OperationTimedOut
	return true, []Notification{op.notify(payload.TypeOperationTimedOut, "deadline", *op.Deadline, tenant, false)}
}

func (op *Operation) notify(typ, cause string, at time.Time, tenant string, late bool) Notification {
	op.Seq++
	d := payload.Operation{
		Protocol: op.Protocol, Device: op.Device, Kind: op.Kind, State: op.State,
		RequestedAt: op.RequestedAt, Deadline: op.Deadline, CompletedAt: op.CompletedAt,
		Late: late, Status: op.Status, EventIDs: slices.Clone(op.EventIDs), Sequence: op.Seq,
	}
	if d.EventIDs == nil {
		d.EventIDs = []string{}
	}
	return Notification{
		ID:      NotificationID("operation", tenant, op.Protocol, cause, typ),
		Type:    typ,
		Subject: op.Protocol,
		Time:    at,
		Data:    mustJSON(d),
	}
}

package payload

import "time"

// Operation notification types, emitted by the engine on NOTIFICATIONS.
const (
	TypeOperationRequested = "operation.requested"
	TypeOperationSucceeded = "operation.succeeded"
	TypeOperationFailed    = "operation.failed"
	TypeOperationTimedOut  = "operation.timed_out"
)

// Operation states.
const (
	OperationRequested = "requested"
	OperationSucceeded = "succeeded"
	OperationFailed    = "failed"
	OperationTimedOut  = "timed_out"
)

// Operation is the data of every operation.* notification: the lifecycle of
// one asynchronous device action, identified by its protocol UUID (also the
// CloudEvent subject).
type Operation struct {
	Protocol    string     `json:"protocol"`
	Device      string     `json:"device,omitempty"`
	Kind        string     `json:"kind,omitempty"` // e.g. reboot, parameters.update
	State       string     `json:"state"`
	RequestedAt *time.Time `json:"requestedAt,omitempty"`
	Deadline    *time.Time `json:"deadline,omitempty"`
	CompletedAt *time.Time `json:"completedAt,omitempty"` // time of the result
	// Late marks a result that arrived after operation.timed_out was sent.
	Late bool `json:"late,omitempty"`
	// Status is the device's own result status (success, failure, ...).
	Status   string   `json:"status,omitempty"`
	EventIDs []string `json:"eventIds"`
	Sequence uint64   `json:"sequence"`
}

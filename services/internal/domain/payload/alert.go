package payload

import "time"

// Alert notification types, emitted by the engine on NOTIFICATIONS.
const (
	TypeAlertOpened       = "alert.opened"
	TypeAlertDeteriorated = "alert.deteriorated"
	TypeAlertImproved     = "alert.improved"
	TypeAlertResolved     = "alert.resolved"
	TypeAlertReminder     = "alert.reminder" // opt-in, while the alert stays open
)

// Alert states.
const (
	AlertStateOpen     = "open"
	AlertStateResolved = "resolved"
)

// Alert is the data of every alert.* notification. The first eight fields
// are the management-cloud paper's webhook body; the rest let a receiver
// see what is affected and order the notifications of one alert.
type Alert struct {
	AlertID        string    `json:"alertId"` // stable for one life of the alert, also the CloudEvent subject
	ProjectID      string    `json:"projectId"`
	AccountID      string    `json:"accountId"`
	Title          string    `json:"title"`
	Text           string    `json:"text"`
	CreatedAt      time.Time `json:"createdAt"`
	StateUpdatedAt time.Time `json:"stateUpdatedAt"`
	State          string    `json:"state"` // open | resolved
	// Transition is the change this notification reports: opened,
	// deteriorated, improved, resolved, or reminder (no change).
	Transition string `json:"transition"`
	// Severity is the worst severity among the affected resources.
	Severity string `json:"severity,omitempty"`
	// Key is the alert key (source type, rule and scope) within the tenant.
	Key string `json:"key"`
	// Resources are the currently affected resources (device system-ips,
	// server names), sorted.
	Resources []string `json:"resources"`
	// EventIDs are the ids of the input events that drove this alert's life
	// so far, oldest first (at most the last 100).
	EventIDs []string `json:"eventIds"`
	// Sequence increases by one with every notification of this alert, so
	// receivers can order them.
	Sequence uint64 `json:"sequence"`
	// Reminder numbers the alert.reminder notifications of one life, from 1.
	Reminder int `json:"reminder,omitempty"`
}

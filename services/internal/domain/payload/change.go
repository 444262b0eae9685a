package payload

import "time"

// TypeChangePrefix starts the CloudEvent type of every CHANGES record:
// herald.change.<entity>.<action>, e.g. herald.change.subscription.created.
const TypeChangePrefix = "herald.change."

// Change records one registry change. Diff values of secret fields are
// "[redacted]".
type Change struct {
	Tenant   string                `json:"tenant"`
	Entity   string                `json:"entity"` // tenant, subscription, apikey
	EntityID string                `json:"entityId"`
	Action   string                `json:"action"` // created, updated, deleted, rotated, paused, resumed, disabled, replayed
	Actor    string                `json:"actor"`
	At       time.Time             `json:"at"`
	Diff     map[string]FieldDelta `json:"diff,omitempty"`
}

// FieldDelta is a field's value before and after a change.
type FieldDelta struct {
	Old any `json:"old,omitempty"`
	New any `json:"new,omitempty"`
}

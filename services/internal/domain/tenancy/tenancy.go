// Package tenancy declares the tenant record that the registry stores in the
// "tenants" bucket and every other service reads: the hierarchy (account,
// sub-account, project) and the per-tenant settings.
package tenancy

import (
	"encoding/json"
	"time"
)

// Tenant kinds.
const (
	KindAccount    = "account"
	KindSubaccount = "subaccount"
	KindProject    = "project"
)

// Tenant is one node of the hierarchy. Its ID is a subject token.
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Parent    string    `json:"parent,omitempty"`
	Settings  Settings  `json:"settings"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Outbox is the registry's CHANGES record of the write that stored this
	// version, until it is published; readers ignore it.
	Outbox json.RawMessage `json:"outbox,omitempty"`
}

// Settings are the tenant's knobs. Zero values mean "the default".
type Settings struct {
	// SubscriptionQuota caps subscriptions per project; 0 means 5.
	SubscriptionQuota int `json:"subscription_quota,omitempty"`
	// AllowUnknownTypes lets the collector accept event types that have no
	// schema in schemas/.
	AllowUnknownTypes bool `json:"allow_unknown_types,omitempty"`
	// AllowPrivateDestinations lets the tenant's own credentials register
	// webhook URLs in the operator's allow-listed non-global ranges (e.g.
	// loopback on the embedded default). Only the operator may set it.
	AllowPrivateDestinations bool `json:"allow_private_destinations,omitempty"`
	// IngestRateLimit is events per second accepted by the collector; 0
	// means the operator's default.
	IngestRateLimit float64 `json:"ingest_rate_limit,omitempty"`
	// SourceAuth holds credentials that source adapters accept, such as the
	// username and sealed password vManage sends with HTTP basic auth.
	SourceAuth map[string]BasicAuth `json:"source_auth,omitempty"`
	// Alerts tunes the alert lifecycle.
	Alerts AlertSettings `json:"alerts,omitempty"`
	// OperationDeadlines maps an operation kind (e.g. "reboot") to its
	// timeout; "*" is the tenant's default. Engine default is 1h.
	OperationDeadlines map[string]Duration `json:"operation_deadlines,omitempty"`
}

// BasicAuth is a username and a password sealed with secretbox.
type BasicAuth struct {
	Username       string `json:"username"`
	PasswordSealed string `json:"password_sealed"`
}

// AlertSettings are the optional alert behaviours.
type AlertSettings struct {
	// ReminderInterval re-notifies (alert.reminder) while an alert is open.
	ReminderInterval Duration `json:"reminder_interval,omitempty"`
	// FlapWindow holds back a resolve that is followed by a re-open within
	// the window.
	FlapWindow Duration `json:"flap_window,omitempty"`
	// NotifyImproved emits alert.improved on partial recovery.
	NotifyImproved bool `json:"notify_improved,omitempty"`
	// KeyFields overrides, per source type, the fields that form the alert
	// key's scope.
	KeyFields map[string][]string `json:"key_fields,omitempty"`
}

// Duration is a time.Duration that reads and writes as "4h", "90s".
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

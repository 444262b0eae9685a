// Package contract names every stream, subject, consumer and KV bucket that
// Herald's services share, and declares their configurations.
//
// The writer of a stream owns its config and ensures it at start-up with the
// function here; each reader ensures its own durable consumer with the
// consumer function here. Nothing on the bus is named anywhere else.
//
// Subjects come in pairs: a wildcard to subscribe or filter with, and a
// builder that makes one concrete subject. Tenant ids, subscription ids and
// event types are validated as subject tokens before they reach a builder.
package contract

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Stream names.
const (
	StreamEvents        = "EVENTS"
	StreamNotifications = "NOTIFICATIONS"
	StreamDeliveries    = "DELIVERIES"
	StreamAttempts      = "ATTEMPTS"
	StreamChanges       = "CHANGES"
	StreamAudit         = "AUDIT"
	StreamTimers        = "TIMERS"
	StreamDeadLetters   = "DEADLETTERS"
)

// Subject wildcards, one per stream subject space.
const (
	EventsWildcard         = "events.>"
	NotificationsWildcard  = "notifications.>"
	DeliveriesWildcard     = "deliveries.>"
	DeliverySchedWildcard  = "deliveries-scheduled.>"
	AttemptsWildcard       = "attempts.>"
	ChangesWildcard        = "changes.>"
	AuditWildcard          = "audit.>"
	TimersWildcard         = "timers.>"
	TimerSchedulesWildcard = "timer-schedules.>"
	DeadLettersWildcard    = "deadletters.>"
	// IngestWildcard is a core NATS request/reply subject, not a stream:
	// internal producers send a CloudEvent and get the collector's verdict
	// after the JetStream ack.
	IngestWildcard = "herald.ingest.*"
)

// Durable consumer names. Each reader owns its consumer's config.
const (
	ConsumerEngine        = "engine"
	ConsumerEngineTimers  = "engine-timers"
	ConsumerPlanner       = "dispatcher-plan"
	ConsumerDeliverer     = "dispatcher-deliver"
	ConsumerAuditEvents   = "audit-events"
	ConsumerAuditNotifs   = "audit-notifications"
	ConsumerAuditAttempts = "audit-attempts"
	ConsumerAuditChanges  = "audit-changes"
	ConsumerAuditDead     = "audit-deadletters"
)

// KV bucket names.
const (
	BucketTenants        = "tenants"
	BucketSubscriptions  = "subscriptions"
	BucketAPIKeys        = "api-keys"
	BucketAlerts         = "alerts"
	BucketOperations     = "operations"
	BucketDeliveryState  = "delivery-state"
	BucketEndpointHealth = "endpoint-health"
	BucketAuditHeads     = "audit-heads"
)

// ErrInvalidToken reports an id or event type that cannot be used in a subject.
var ErrInvalidToken = errors.New("invalid subject token")

var (
	tokenRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	typeRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$`)
)

// ValidateToken reports whether s can be a single subject token: lower-case
// letters, digits, '-' and '_', at most 64 characters, starting with a letter
// or digit. Tenant and subscription ids must pass it.
func ValidateToken(s string) error {
	if !tokenRE.MatchString(s) {
		return fmt.Errorf("%w %q: want 1-64 of [a-z0-9_-], starting with a letter or digit", ErrInvalidToken, s)
	}
	return nil
}

// ValidateType reports whether an event type can become subject tokens:
// lower-case dotted tokens such as "vmanage.alarm" or "alert.opened", at most
// 128 characters.
func ValidateType(s string) error {
	if len(s) > 128 || !typeRE.MatchString(s) {
		return fmt.Errorf("%w: event type %q: want lower-case dotted tokens of [a-z0-9_-], at most 128 characters", ErrInvalidToken, s)
	}
	return nil
}

// EventSubject is where the collector stores an accepted event:
// events.<tenant>.<type...>.
func EventSubject(tenant, eventType string) string {
	return "events." + tenant + "." + eventType
}

// TenantEventsFilter matches every event of one tenant.
func TenantEventsFilter(tenant string) string { return "events." + tenant + ".>" }

// NotificationSubject is where the engine publishes a notification:
// notifications.<tenant>.<type...>.
func NotificationSubject(tenant, notificationType string) string {
	return "notifications." + tenant + "." + notificationType
}

// TenantNotificationsFilter matches every notification of one tenant.
func TenantNotificationsFilter(tenant string) string { return "notifications." + tenant + ".>" }

// DeliverySubject carries one (notification, subscription) pair to the
// deliverers: deliveries.<tenant>.<subscription>.
func DeliverySubject(tenant, subscriptionID string) string {
	return "deliveries." + tenant + "." + subscriptionID
}

// DeliveryScheduleSubject holds the schedule that re-publishes a pair on
// DeliverySubject when its retry is due. One schedule subject per pair.
func DeliveryScheduleSubject(tenant, subscriptionID, pairKey string) string {
	return "deliveries-scheduled." + tenant + "." + subscriptionID + "." + pairKey
}

// AttemptSubject records one HTTP attempt: attempts.<tenant>.<subscription>.
func AttemptSubject(tenant, subscriptionID string) string {
	return "attempts." + tenant + "." + subscriptionID
}

// ChangeSubject records a registry change: changes.<tenant>.<entity>, where
// entity is "tenant", "subscription" or "apikey".
func ChangeSubject(tenant, entity string) string {
	return "changes." + tenant + "." + entity
}

// AuditSubject holds one tenant's hash-chained trail: audit.<tenant>.
func AuditSubject(tenant string) string { return "audit." + tenant }

// TimerSubject is where a durable timer fires: timers.<tenant>.<kind>.<key>.
func TimerSubject(tenant, kind, key string) string {
	return "timers." + tenant + "." + kind + "." + key
}

// TimerScheduleSubject holds the schedule of one timer; republishing on it
// replaces the timer (the schedule subject keeps one message).
func TimerScheduleSubject(tenant, kind, key string) string {
	return "timer-schedules." + tenant + "." + kind + "." + key
}

// DeadLetterSubject holds the poison messages one consumer set aside:
// deadletters.<tenant>.<consumer>. Every service that consumes writes it.
func DeadLetterSubject(tenant, consumer string) string {
	return "deadletters." + tenant + "." + consumer
}

// IngestSubject is the request/reply subject of the collector for a tenant.
func IngestSubject(tenant string) string { return "herald.ingest." + tenant }

// TenantFromSubject returns the tenant token of any Herald stream subject.
func TenantFromSubject(subject string) (string, bool) {
	parts := strings.SplitN(subject, ".", 3)
	if len(parts) < 2 || parts[1] == "" {
		return "", false
	}
	return parts[1], true
}

// TypeFromSubject returns the event type of an events.* or notifications.*
// subject.
func TypeFromSubject(subject string) (string, bool) {
	parts := strings.SplitN(subject, ".", 3)
	if len(parts) < 3 || parts[2] == "" {
		return "", false
	}
	return parts[2], true
}

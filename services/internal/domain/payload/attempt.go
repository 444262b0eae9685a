package payload

import "time"

// TypeAttempt is the CloudEvent type of an ATTEMPTS record.
const TypeAttempt = "herald.attempt"

// Outcomes of an attempt.
const (
	OutcomeDelivered    = "delivered"     // 2xx
	OutcomeRetrying     = "retrying"      // failed, another attempt is scheduled
	OutcomeFailed       = "failed"        // permanent failure (4xx, 3xx, 410)
	OutcomeDeadLettered = "dead_lettered" // retries exhausted
	// OutcomeReplayRequested marks the record of a replay request (attempt
	// 0, Replay true), so the audit trail shows who asked for it.
	OutcomeReplayRequested = "replay_requested"
)

// Error classes.
const (
	ErrClassNone       = ""
	ErrClassHTTPStatus = "http_status"
	ErrClassTimeout    = "timeout"
	ErrClassConnection = "connection"
	ErrClassTLS        = "tls"
	ErrClassBlocked    = "blocked_address" // SSRF defence refused the address
	ErrClassRedirect   = "redirect"
	ErrClassRateLimit  = "rate_limited"
	ErrClassBreaker    = "circuit_open"
	ErrClassInternal   = "internal"
)

// Attempt is one HTTP attempt to deliver a notification to a subscription.
// It never holds a secret, a signature or an Authorization value; URL has
// its userinfo and query removed.
type Attempt struct {
	AttemptID        string `json:"attemptId"`
	WebhookID        string `json:"webhookId"`
	Tenant           string `json:"tenant"`
	SubscriptionID   string `json:"subscriptionId"`
	NotificationID   string `json:"notificationId"`
	NotificationType string `json:"notificationType"`
	// Subject is the notification's CloudEvent subject (alert id, protocol
	// UUID), so the audit can tell an alert's or operation's whole story.
	Subject         string     `json:"subject,omitempty"`
	EventIDs        []string   `json:"eventIds,omitempty"`
	URL             string     `json:"url"`
	Attempt         int        `json:"attempt"`
	Outcome         string     `json:"outcome"`
	StatusCode      int        `json:"statusCode,omitempty"`
	ErrorClass      string     `json:"errorClass,omitempty"`
	Error           string     `json:"error,omitempty"`
	LatencyMs       float64    `json:"latencyMs"`
	ResponseSnippet string     `json:"responseSnippet,omitempty"`
	StartedAt       time.Time  `json:"startedAt"`
	NextAttemptAt   *time.Time `json:"nextAttemptAt,omitempty"`
	Replay          bool       `json:"replay,omitempty"`
	// ReplayOf is, on a replay's attempts, the webhook-id of the pair it
	// replays (WebhookID is the replay's own).
	ReplayOf string `json:"replayOf,omitempty"`
}

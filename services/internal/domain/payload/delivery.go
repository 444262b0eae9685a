package payload

import (
	"encoding/json"
	"time"
)

// TypeDelivery is the CloudEvent type of a DELIVERIES message: one
// (notification, subscription) pair for the dispatcher's deliverers.
const TypeDelivery = "herald.delivery"

// Delivery is one (notification, subscription) pair to post. The pair is
// identified by NotificationID and SubscriptionID; Attempt counts from 1 and
// lets a deliverer tell a stale duplicate from the scheduled next attempt.
type Delivery struct {
	// Tenant owns the subscription (it may be an ancestor of the
	// notification's tenant when the subscription includes sub-accounts).
	Tenant             string `json:"tenant"`
	SubscriptionID     string `json:"subscriptionId"`
	NotificationTenant string `json:"notificationTenant"`
	NotificationID     string `json:"notificationId"`
	NotificationType   string `json:"notificationType"`
	// NotificationSeq is the notification's sequence in NOTIFICATIONS, so a
	// replay of this pair can read it again.
	NotificationSeq uint64 `json:"notificationSeq,omitempty"`
	// NotifiedAt is when the notification was stored on NOTIFICATIONS; the
	// delivery-latency histogram measures from it.
	NotifiedAt *time.Time `json:"notifiedAt,omitempty"`
	// Notification is the notification as a structured CloudEvent (JSON).
	Notification json.RawMessage `json:"notification"`
	Attempt      int             `json:"attempt"`
	// Replay is set on pairs re-sent by a replay request; it makes their
	// message ids new and marks their attempts.
	Replay string `json:"replay,omitempty"`
}

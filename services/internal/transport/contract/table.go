package contract

import (
	"fmt"
	"strings"
)

// Route describes one subject space: which stream stores it, its wildcard,
// the template its builder produces, and who writes and reads it. The
// README's table is generated from Routes and a test keeps it current.
type Route struct {
	Stream   string
	Wildcard string
	Template string
	Writer   string
	Readers  string
}

// Routes lists every stream subject space.
var Routes = []Route{
	{StreamEvents, EventsWildcard, "events.<tenant>.<type>", "collector", "engine (`engine`), audit (`audit-events`)"},
	{StreamNotifications, NotificationsWildcard, "notifications.<tenant>.<type>", "engine; dispatcher (subscription.disabled, endpoint.disabled)", "dispatcher (`dispatcher-plan`), audit (`audit-notifications`)"},
	{StreamDeliveries, DeliveriesWildcard, "deliveries.<tenant>.<subscription>", "dispatcher plan", "dispatcher deliver (`dispatcher-deliver`, work queue)"},
	{StreamDeliveries, DeliverySchedWildcard, "deliveries-scheduled.<tenant>.<subscription>.<pair>", "dispatcher (scheduled retries)", "JetStream scheduler, which republishes on deliveries.>"},
	{StreamAttempts, AttemptsWildcard, "attempts.<tenant>.<subscription>", "dispatcher", "audit (`audit-attempts`)"},
	{StreamChanges, ChangesWildcard, "changes.<tenant>.<entity>", "registry", "audit (`audit-changes`)"},
	{StreamAudit, AuditWildcard, "audit.<tenant>", "audit", "audit query API"},
	{StreamTimers, TimerSchedulesWildcard, "timer-schedules.<tenant>.<kind>.<key>", "engine (deadlines, reminders)", "JetStream scheduler, which publishes on timers.>"},
	{StreamTimers, TimersWildcard, "timers.<tenant>.<kind>.<key>", "JetStream scheduler", "engine (`engine-timers`)"},
	{StreamDeadLetters, DeadLettersWildcard, "deadletters.<tenant>.<consumer>", "any consumer whose handler panicked", "audit (`audit-deadletters`)"},
}

// MarkdownTable renders Routes and the buckets as the README's table.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Stream | Subjects | Subject template | Written by | Read by (durable) |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, r := range Routes {
		fmt.Fprintf(&b, "| `%s` | `%s` | `%s` | %s | %s |\n", r.Stream, r.Wildcard, r.Template, r.Writer, r.Readers)
	}
	b.WriteString("\n| KV bucket | Holds |\n|---|---|\n")
	for _, name := range AllBuckets {
		fmt.Fprintf(&b, "| `%s` | %s |\n", name, Bucket(name, DefaultTopology).Description)
	}
	return b.String()
}

package alertfsm

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/heraldhq/herald/services/internal/domain/payload"
)

// Signal is one input observation about an alert: some resources became
// affected (Active) or recovered (!Active). One raw event may give several
// signals, one per alert key (a clc alert carries one trigger per metric).
type Signal struct {
	EventID   string    // id of the input event (unique per source event)
	Time      time.Time // when the source observed it
	Key       string    // alert key within the tenant: source type, rule and scope
	AlertID   string    // optional: the source's own alert id (lmc.alert); else derived
	Title     string
	Text      string
	AccountID string   // optional: the source's account (clc accountAlias)
	Resources []string // the devices or servers this signal is about
	Active    bool
	Severity  string // source severity label
	Rank      int    // severity as a number, higher is worse
}

// Options are the per-tenant alert settings the machine needs.
type Options struct {
	Tenant         string
	ProjectID      string
	AccountID      string
	NotifyImproved bool
	// FlapWindow, when positive, holds a resolve back: Apply emits a
	// TypeFlapTimer request instead, and the resolve is sent by
	// ResolveHeld when the timer fires, unless the alert failed again
	// meanwhile (then its life simply continues).
	FlapWindow time.Duration
}

// TypeFlapTimer is the type of the pseudo-notification asking the engine to
// arm the flap-damping timer. It is stored in Pending like a notification
// (so arming it survives a crash) but never published as one.
const TypeFlapTimer = "herald.timer.flap"

// Affected is one affected resource's severity.
type Affected struct {
	Severity string `json:"severity,omitempty"`
	Rank     int    `json:"rank"`
}

// Alert is the stored state of one alert key, one KV record. It survives
// resolution: the next failing signal opens a new life with a new AlertID.
type Alert struct {
	Key            string              `json:"key"`
	Life           int                 `json:"life"`
	AlertID        string              `json:"alertId,omitempty"`
	Open           bool                `json:"open"`
	Title          string              `json:"title,omitempty"`
	Text           string              `json:"text,omitempty"`
	AccountID      string              `json:"accountId,omitempty"`
	CreatedAt      time.Time           `json:"createdAt"`
	StateUpdatedAt time.Time           `json:"stateUpdatedAt"`
	Affected       map[string]Affected `json:"affected,omitempty"`
	// LastSeen is the source time of the latest signal per resource, across
	// lives. An older signal arriving later (concurrent workers, a nak'ed
	// input redelivered after newer ones) is stale and ignored.
	LastSeen map[string]time.Time `json:"lastSeen,omitempty"`
	Seq      uint64               `json:"seq"`
	// Holding is set while a resolve is held back by flap damping; the
	// Held fields remember the resolving input and the state before it.
	Holding   bool      `json:"holding,omitempty"`
	HeldEvent string    `json:"heldEvent,omitempty"`
	HeldAt    time.Time `json:"heldAt,omitzero"`
	HeldCount int       `json:"heldCount,omitempty"`
	HeldRank  int       `json:"heldRank,omitempty"`
	// Reminded is the number of the last reminder sent in this life.
	Reminded int      `json:"reminded,omitempty"`
	EventIDs []string `json:"eventIds,omitempty"`
	// Processed are the last input event ids applied; a redelivered input
	// found here changes nothing.
	Processed []string `json:"processed,omitempty"`
	// Pending are notifications stored by the CAS that produced them and not
	// yet confirmed published (see the engine's doc comment).
	Pending []Notification `json:"pending,omitempty"`
	// History is the last maxHistory transitions of this key, across lives,
	// oldest first: what the alerts API shows as an alert's history.
	History []Transition `json:"history,omitempty"`
}

// Transition is one notification an alert caused, as kept in its record.
type Transition struct {
	AlertID        string    `json:"alertId"`
	Sequence       uint64    `json:"sequence"`
	Type           string    `json:"type"`
	Transition     string    `json:"transition"`
	State          string    `json:"state"`
	Severity       string    `json:"severity,omitempty"`
	Affected       int       `json:"affected"` // resources affected after it
	At             time.Time `json:"at"`
	NotificationID string    `json:"notificationId"`
}

// maxHistory bounds an alert record's History, so that a long-open alert
// with reminders cannot grow its record (and every CAS write) without end.
const maxHistory = 20

// Seen reports whether the event id was already applied.
func (a *Alert) Seen(eventID string) bool { return slices.Contains(a.Processed, eventID) }

func (a *Alert) worst() (string, int) {
	sev, rank := "", 0
	for _, r := range slices.Sorted(maps.Keys(a.Affected)) {
		if af := a.Affected[r]; af.Rank > rank || sev == "" {
			sev, rank = af.Severity, af.Rank
		}
	}
	return sev, rank
}

// Apply applies s to a and returns the notifications it causes. It returns
// changed=false (and nothing) when s was already applied; otherwise a has
// been updated and must be written back even if no notification results
// (a silent partial recovery still changes the affected set).
func Apply(a *Alert, s Signal, o Options) (changed bool, out []Notification) {
	if a.Seen(s.EventID) {
		return false, nil
	}
	a.Processed = remember(a.Processed, s.EventID)
	if a.Key == "" {
		a.Key = s.Key
	}
	if a.Affected == nil {
		a.Affected = map[string]Affected{}
	}
	if a.LastSeen == nil {
		a.LastSeen = map[string]time.Time{}
	}
	fresh := s.Resources[:0:0]
	for _, r := range s.Resources {
		if last, ok := a.LastSeen[r]; ok && last.After(s.Time) {
			continue
		}
		a.LastSeen[r] = s.Time
		fresh = append(fresh, r)
	}
	if len(fresh) == 0 {
		return true, nil
	}
	s.Resources = fresh
	prevCount := len(a.Affected)
	_, prevRank := a.worst()
	if a.Holding && s.Active {
		// Failed again within the flap window: the life continues, compared
		// with what receivers last heard.
		a.Holding = false
		prevCount, prevRank = a.HeldCount, a.HeldRank
	}

	if !s.Active {
		if !a.Open {
			return true, nil // recovery of an alert we never saw open
		}
		removed := false
		for _, r := range s.Resources {
			if _, ok := a.Affected[r]; ok {
				delete(a.Affected, r)
				removed = true
			}
		}
		if !removed {
			return true, nil
		}
		a.EventIDs = remember(a.EventIDs, s.EventID)
		a.StateUpdatedAt = s.Time
		if len(a.Affected) == 0 {
			if o.FlapWindow > 0 {
				a.Holding, a.HeldEvent, a.HeldAt, a.HeldCount, a.HeldRank = true, s.EventID, s.Time, prevCount, prevRank
				return true, []Notification{{
					ID:   NotificationID("flap", o.Tenant, a.Key, a.AlertID, s.EventID),
					Type: TypeFlapTimer, Subject: a.AlertID, Time: s.Time,
					Data: mustJSON(map[string]string{"alertId": a.AlertID, "heldEvent": s.EventID}),
				}}
			}
			a.Open = false
			return true, []Notification{a.notify(payload.TypeAlertResolved, "resolved", s, o)}
		}
		if o.NotifyImproved {
			return true, []Notification{a.notify(payload.TypeAlertImproved, "improved", s, o)}
		}
		return true, nil
	}

	opening := !a.Open
	if opening {
		a.Life++
		a.Open = true
		a.AlertID = s.AlertID
		if a.AlertID == "" {
			a.AlertID = alertUUID(o.Tenant, s.Key, a.Life, s.EventID)
		}
		a.CreatedAt = s.Time
		a.EventIDs = nil
		a.Seq = 0
		a.Reminded = 0
		clear(a.Affected)
		prevCount, prevRank = 0, 0
	}
	if s.Title != "" {
		a.Title = s.Title
	}
	if s.Text != "" {
		a.Text = s.Text
	}
	if s.AccountID != "" {
		a.AccountID = s.AccountID
	}
	lowered := false
	for _, r := range s.Resources {
		if old, ok := a.Affected[r]; ok && old.Rank > s.Rank {
			lowered = true
		}
		a.Affected[r] = Affected{Severity: s.Severity, Rank: s.Rank}
	}
	_, rank := a.worst()
	switch {
	case opening:
		a.EventIDs = remember(a.EventIDs, s.EventID)
		a.StateUpdatedAt = s.Time
		return true, []Notification{a.notify(payload.TypeAlertOpened, "opened", s, o)}
	case len(a.Affected) > prevCount || rank > prevRank:
		a.EventIDs = remember(a.EventIDs, s.EventID)
		a.StateUpdatedAt = s.Time
		return true, []Notification{a.notify(payload.TypeAlertDeteriorated, "deteriorated", s, o)}
	case lowered || rank < prevRank:
		a.EventIDs = remember(a.EventIDs, s.EventID)
		a.StateUpdatedAt = s.Time
		if o.NotifyImproved {
			return true, []Notification{a.notify(payload.TypeAlertImproved, "improved", s, o)}
		}
	}
	return true, nil
}

// Remind emits reminder number n of the alert's life alertID, once, and only
// while that life is still open. at is the reminder's nominal time.
func Remind(a *Alert, alertID string, n int, at time.Time, o Options) (changed bool, out []Notification) {
	if !a.Open || a.Holding || a.AlertID != alertID || n <= a.Reminded {
		return false, nil
	}
	a.Reminded = n
	s := Signal{EventID: "reminder-" + strconv.Itoa(n), Time: at}
	return true, []Notification{a.notify(payload.TypeAlertReminder, "reminder", s, o)}
}

// ResolveHeld sends the resolve that flap damping held back, if the alert
// is still holding the same resolving input when the window has passed.
func ResolveHeld(a *Alert, alertID, heldEvent string, o Options) (changed bool, out []Notification) {
	if !a.Holding || a.AlertID != alertID || a.HeldEvent != heldEvent {
		return false, nil
	}
	a.Holding, a.Open = false, false
	a.StateUpdatedAt = a.HeldAt
	s := Signal{EventID: heldEvent, Time: a.HeldAt}
	return true, []Notification{a.notify(payload.TypeAlertResolved, "resolved", s, o)}
}

func (a *Alert) notify(typ, transition string, s Signal, o Options) Notification {
	a.Seq++
	sev, _ := a.worst()
	state := payload.AlertStateOpen
	if !a.Open {
		state = payload.AlertStateResolved
	}
	acct := a.AccountID
	if acct == "" {
		acct = o.AccountID
	}
	d := payload.Alert{
		AlertID: a.AlertID, ProjectID: o.ProjectID, AccountID: acct,
		Title: a.Title, Text: a.Text, CreatedAt: a.CreatedAt, StateUpdatedAt: a.StateUpdatedAt,
		State: state, Transition: transition, Severity: sev, Key: a.Key,
		Resources: slices.Sorted(maps.Keys(a.Affected)),
		EventIDs:  slices.Clone(a.EventIDs), Sequence: a.Seq,
	}
	if d.Resources == nil {
		d.Resources = []string{}
	}
	if typ == payload.TypeAlertReminder {
		d.Reminder = a.Reminded
	}
	n := Notification{
		ID:      NotificationID("alert", o.Tenant, a.Key, a.AlertID, s.EventID, typ),
		Type:    typ,
		Subject: a.AlertID,
		Time:    s.Time,
		Data:    mustJSON(d),
	}
	a.History = append(a.History, Transition{
		AlertID: a.AlertID, Sequence: a.Seq, Type: typ, Transition: transition, State: state,
		Severity: sev, Affected: len(d.Resources), At: s.Time, NotificationID: n.ID,
	})
	if len(a.History) > maxHistory {
		a.History = slices.Clone(a.History[len(a.History)-maxHistory:])
	}
	return n
}

// alertUUID derives a stable RFC 4122-shaped id (version 8, name-based) for
// one life of an alert, so every instance computes the same one.
func alertUUID(tenant, key string, life int, eventID string) string {
	h := NotificationID("alert-id", tenant, key, strconv.Itoa(life), eventID)
	b := []byte(h[:32])
	b[12] = '8'
	b[16] = "89ab"[int(b[16])%4]
	return string(b[0:8]) + "-" + string(b[8:12]) + "-" + string(b[12:16]) + "-" + string(b[16:20]) + "-" + string(b[20:32])
}

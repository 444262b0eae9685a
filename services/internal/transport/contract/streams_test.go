package contract

import (
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// wantStreams is every stream config written out longhand: the table in
// streams.go must generate exactly these, so a changed row shows up here as
// a deliberate edit rather than a silent drift.
func wantStreams(t Topology) map[string]jetstream.StreamConfig {
	r := t.replicas()
	return map[string]jetstream.StreamConfig{
		StreamEvents: {
			Name:               StreamEvents,
			Description:        "Accepted raw events, one subject per tenant and type",
			Subjects:           []string{EventsWildcard},
			Retention:          jetstream.LimitsPolicy,
			MaxAge:             7 * 24 * time.Hour,
			Storage:            t.Storage,
			Replicas:           r,
			Duplicates:         DuplicateWindow,
			AllowAtomicPublish: true,
			Discard:            jetstream.DiscardOld,
		},
		StreamNotifications: {
			Name:               StreamNotifications,
			Description:        "Notifications to fan out to subscribers",
			Subjects:           []string{NotificationsWildcard},
			Retention:          jetstream.LimitsPolicy,
			MaxAge:             7 * 24 * time.Hour,
			Storage:            t.Storage,
			Replicas:           r,
			Duplicates:         DuplicateWindow,
			AllowAtomicPublish: true,
		},
		StreamDeliveries: {
			Name:               StreamDeliveries,
			Description:        "Work queue of (notification, subscription) pairs and their scheduled retries",
			Subjects:           []string{DeliveriesWildcard, DeliverySchedWildcard},
			Retention:          jetstream.WorkQueuePolicy,
			Storage:            t.Storage,
			Replicas:           r,
			Duplicates:         DuplicateWindow,
			AllowAtomicPublish: true,
			AllowMsgSchedules:  true,
			AllowMsgTTL:        true,
		},
		StreamAttempts: {
			Name:               StreamAttempts,
			Description:        "Every delivery attempt with status, latency and error class",
			Subjects:           []string{AttemptsWildcard},
			Retention:          jetstream.LimitsPolicy,
			MaxAge:             30 * 24 * time.Hour,
			Storage:            t.Storage,
			Replicas:           r,
			Duplicates:         DuplicateWindow,
			AllowAtomicPublish: true,
		},
		StreamChanges: {
			Name:        StreamChanges,
			Description: "Registry changes with actor, time and redacted diff",
			Subjects:    []string{ChangesWildcard},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      30 * 24 * time.Hour,
			Storage:     t.Storage,
			Replicas:    r,
			Duplicates:  DuplicateWindow,
		},
		StreamAudit: {
			Name:        StreamAudit,
			Description: "Per-tenant hash-chained audit trail",
			Subjects:    []string{AuditWildcard},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      365 * 24 * time.Hour,
			Storage:     t.Storage,
			Replicas:    r,
			Duplicates:  DuplicateWindow,
		},
		StreamTimers: {
			Name:              StreamTimers,
			Description:       "Engine timers: schedules and fired timers",
			Subjects:          []string{TimersWildcard, TimerSchedulesWildcard},
			Retention:         jetstream.LimitsPolicy,
			MaxAge:            30 * 24 * time.Hour,
			Storage:           t.Storage,
			Replicas:          r,
			Duplicates:        DuplicateWindow,
			AllowMsgSchedules: true,
			AllowMsgTTL:       true,
			AllowRollup:       true,
			MaxMsgsPerSubject: 1,
		},
		StreamDeadLetters: {
			Name:        StreamDeadLetters,
			Description: "Poison messages set aside by the consumer that could not handle them",
			Subjects:    []string{DeadLettersWildcard},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      30 * 24 * time.Hour,
			Storage:     t.Storage,
			Replicas:    r,
			Duplicates:  DuplicateWindow,
		},
	}
}

func TestStreamTableGeneratesExpectedConfigs(t *testing.T) {
	ctors := map[string]func(Topology) jetstream.StreamConfig{
		StreamEvents:        EventsStream,
		StreamNotifications: NotificationsStream,
		StreamDeliveries:    DeliveriesStream,
		StreamAttempts:      AttemptsStream,
		StreamChanges:       ChangesStream,
		StreamAudit:         AuditStream,
		StreamTimers:        TimersStream,
		StreamDeadLetters:   DeadLettersStream,
	}
	for _, topo := range []Topology{
		DefaultTopology,
		{Replicas: 3, Storage: jetstream.MemoryStorage},
		{}, // zero replicas fall back to one
	} {
		want := wantStreams(topo)
		all := AllStreams(topo)
		if len(all) != len(want) {
			t.Fatalf("AllStreams has %d streams, want %d", len(all), len(want))
		}
		wantOrder := []string{
			StreamEvents, StreamNotifications, StreamDeliveries, StreamAttempts,
			StreamChanges, StreamAudit, StreamTimers, StreamDeadLetters,
		}
		for i, got := range all {
			if got.Name != wantOrder[i] {
				t.Errorf("AllStreams[%d] = %s, want %s", i, got.Name, wantOrder[i])
			}
			if !reflect.DeepEqual(got, want[got.Name]) {
				t.Errorf("AllStreams %s on %+v:\n got %+v\nwant %+v", got.Name, topo, got, want[got.Name])
			}
		}
		for name, ctor := range ctors {
			if got := ctor(topo); !reflect.DeepEqual(got, want[name]) {
				t.Errorf("%s constructor on %+v:\n got %+v\nwant %+v", name, topo, got, want[name])
			}
		}
	}
}

// A caller that edits a returned config must not change the table.
func TestStreamConfigsDoNotShareSubjects(t *testing.T) {
	a := DeliveriesStream(DefaultTopology)
	a.Subjects[0] = "changed.>"
	if b := DeliveriesStream(DefaultTopology); b.Subjects[0] != DeliveriesWildcard {
		t.Fatalf("editing a returned config changed the table: %v", b.Subjects)
	}
}

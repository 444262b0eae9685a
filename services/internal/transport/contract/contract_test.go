package contract

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// Every builder's subject must be stored by exactly the stream its route names.
func TestBuildersFallInTheirStream(t *testing.T) {
	built := map[string]string{
		EventSubject("acme", "vmanage.alarm"):                   StreamEvents,
		NotificationSubject("acme", "alert.opened"):             StreamNotifications,
		DeliverySubject("acme", "sub-1"):                        StreamDeliveries,
		DeliveryScheduleSubject("acme", "sub-1", "ab12"):        StreamDeliveries,
		AttemptSubject("acme", "sub-1"):                         StreamAttempts,
		ChangeSubject("acme", "subscription"):                   StreamChanges,
		AuditSubject("acme"):                                    StreamAudit,
		TimerSubject("acme", "operation", "uuid-1"):             StreamTimers,
		TimerScheduleSubject("acme", "operation", "uuid-1"):     StreamTimers,
		TenantEventsFilter("acme") + "":                         StreamEvents,
		TenantNotificationsFilter("acme"):                       StreamNotifications,
		EventSubject("acme", "clc.server") + "":                 StreamEvents,
		NotificationSubject("acme", "operation.timed_out") + "": StreamNotifications,
	}
	streams := AllStreams(DefaultTopology)
	for subj, want := range built {
		var got []string
		for _, s := range streams {
			for _, f := range s.Subjects {
				if server.SubjectMatchesFilter(subj, f) {
					got = append(got, s.Name)
				}
			}
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("subject %q is stored by %v, want only %s", subj, got, want)
		}
	}
	// The ingest request subject must not be captured by any stream.
	for _, s := range streams {
		for _, f := range s.Subjects {
			if server.SubjectsCollide(IngestSubject("acme"), f) {
				t.Errorf("ingest subject collides with stream %s", s.Name)
			}
		}
	}
}

func TestStreamsDoNotOverlap(t *testing.T) {
	streams := AllStreams(DefaultTopology)
	for i, a := range streams {
		for _, b := range streams[i+1:] {
			for _, fa := range a.Subjects {
				for _, fb := range b.Subjects {
					if server.SubjectsCollide(fa, fb) {
						t.Errorf("streams %s (%s) and %s (%s) overlap", a.Name, fa, b.Name, fb)
					}
				}
			}
		}
	}
}

func TestRoutesCoverEveryStreamSubject(t *testing.T) {
	routes := map[string]bool{}
	for _, r := range Routes {
		routes[r.Stream+" "+r.Wildcard] = true
	}
	for _, s := range AllStreams(DefaultTopology) {
		for _, f := range s.Subjects {
			if !routes[s.Name+" "+f] {
				t.Errorf("stream %s subject %s has no Route (README table)", s.Name, f)
			}
			delete(routes, s.Name+" "+f)
		}
	}
	for r := range routes {
		t.Errorf("route %s names no stream subject", r)
	}
}

func TestConsumersFilterTheirStream(t *testing.T) {
	check := func(stream, durable, filter string) {
		for _, s := range AllStreams(DefaultTopology) {
			if s.Name != stream {
				continue
			}
			for _, f := range s.Subjects {
				if server.SubjectMatchesFilter(filter, f) {
					return
				}
			}
		}
		t.Errorf("consumer %s filter %s is not within stream %s", durable, filter, stream)
	}
	for _, c := range []struct{ stream, durable, filter string }{
		{StreamEvents, EngineConsumer().Durable, EngineConsumer().FilterSubject},
		{StreamTimers, EngineTimersConsumer().Durable, EngineTimersConsumer().FilterSubject},
		{StreamNotifications, PlannerConsumer().Durable, PlannerConsumer().FilterSubject},
		{StreamDeliveries, DelivererConsumer().Durable, DelivererConsumer().FilterSubject},
	} {
		check(c.stream, c.durable, c.filter)
	}
	for stream, c := range AuditConsumers() {
		check(stream, c.Durable, c.FilterSubject)
	}
	if c := DelivererConsumer(); c.AckWait <= 15*1e9 {
		t.Errorf("deliverer AckWait %v must outlast the 15s HTTP timeout", c.AckWait)
	}
}

func TestValidation(t *testing.T) {
	for _, ok := range []string{"acme", "a", "acme-eu_1", strings.Repeat("a", 64)} {
		if err := ValidateToken(ok); err != nil {
			t.Errorf("ValidateToken(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Acme", "a.b", "a*", "a>", "-a", "a b", strings.Repeat("a", 65), "ü"} {
		if err := ValidateToken(bad); err == nil {
			t.Errorf("ValidateToken(%q) accepted", bad)
		}
	}
	for _, ok := range []string{"alert.opened", "vmanage.alarm", "operation.timed_out", "x"} {
		if err := ValidateType(ok); err != nil {
			t.Errorf("ValidateType(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Alert.Opened", "a..b", ".a", "a.", "a.*", "a.>", "a b"} {
		if err := ValidateType(bad); err == nil {
			t.Errorf("ValidateType(%q) accepted", bad)
		}
	}
}

var update = flag.Bool("update", false, "rewrite the README's stream table")

// The README's stream table is generated from Routes; this keeps it current.
// Run with -update to rewrite it.
func TestREADMETableIsCurrent(t *testing.T) {
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	const begin, end = "<!-- contract-table:begin -->\n", "<!-- contract-table:end -->"
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README lacks the %q ... %q markers", begin, end)
	}
	if *update {
		s = s[:i+len(begin)] + MarkdownTable() + s[j:]
		if err := os.WriteFile("../../../../README.md", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got, want := s[i+len(begin):j], MarkdownTable(); got != want {
		t.Errorf("README stream table is stale; run go test ./services/internal/transport/contract -run README -update, or replace it with:\n%s", want)
	}
}

package subscription_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

func valid() subscription.Subscription {
	return subscription.Subscription{
		URL:         "https://example.com/hook",
		Events:      []string{"alert.opened", "alert.*", "*"},
		PayloadMode: subscription.PayloadStructured,
		RetryPolicy: subscription.RetryDefault,
		Status:      subscription.StatusEnabled,
	}
}

func TestValidateAcceptsAValidSubscription(t *testing.T) {
	for _, edit := range []func(*subscription.Subscription){
		func(*subscription.Subscription) {},
		func(s *subscription.Subscription) { s.Status = subscription.StatusDisabled },
		func(s *subscription.Subscription) { s.Filter = "   " },
		func(s *subscription.Subscription) { s.Filter = `data.severity == "critical"` },
		func(s *subscription.Subscription) {
			s.PayloadMode, s.Template = subscription.PayloadTemplate, `{"t":"{{.type}}"}`
		},
		func(s *subscription.Subscription) { s.RateLimit = subscription.MaxRateLimit },
		func(s *subscription.Subscription) {
			s.Headers = map[string]string{"X-Team": "ops"}
			s.SecretHeaders = map[string]subscription.SecretHeader{"X-Api-Key": {Sealed: "s", Hint: "…"}}
		},
		func(s *subscription.Subscription) {
			s.Auth = subscription.Auth{Type: subscription.AuthBasic, Username: "u", PasswordSealed: "s"}
		},
		func(s *subscription.Subscription) {
			s.Auth = subscription.Auth{Type: subscription.AuthBearer, TokenSealed: "s"}
		},
		func(s *subscription.Subscription) { s.Description = strings.Repeat("ü", subscription.MaxDescription) },
		func(s *subscription.Subscription) {
			s.Metadata = map[string]string{strings.Repeat("k", 64): strings.Repeat("v", 512)}
		},
	} {
		s := valid()
		edit(&s)
		if errs := s.Validate(); errs != nil {
			t.Errorf("%+v: %v", s, errs)
		}
	}
}

func TestValidateNamesEveryField(t *testing.T) {
	for _, c := range []struct {
		edit    func(*subscription.Subscription)
		pointer string
		detail  string
	}{
		{func(s *subscription.Subscription) { s.URL = "" }, "/url", "required"},
		{func(s *subscription.Subscription) { s.URL = "https://x/" + strings.Repeat("a", subscription.MaxURL) }, "/url", "longer than 2048 bytes"},
		{func(s *subscription.Subscription) { s.Events = nil }, "/events", "required"},
		{func(s *subscription.Subscription) { s.Events = []string{} }, "/events", "at least one event type or pattern is required"},
		{func(s *subscription.Subscription) { s.Events = make([]string, subscription.MaxEvents+1) }, "/events", "at most 50 entries"},
		{func(s *subscription.Subscription) { s.Events = []string{"alert.opened", "Alert.*"} }, "/events/1", "want an event type"},
		{func(s *subscription.Subscription) { s.Filter = "data.x ==" }, "/filter", "line 1, column"},
		{func(s *subscription.Subscription) { s.Template = "x" }, "/template", "only with payload_mode template"},
		{func(s *subscription.Subscription) { s.PayloadMode = subscription.PayloadTemplate }, "/template", "required with payload_mode template"},
		{func(s *subscription.Subscription) {
			s.PayloadMode, s.Template = subscription.PayloadTemplate, strings.Repeat("a", subscription.MaxTemplate+1)
		}, "/template", "longer than 16384 bytes"},
		{func(s *subscription.Subscription) { s.PayloadMode, s.Template = subscription.PayloadTemplate, "{{" }, "/template", "body:1:"},
		{func(s *subscription.Subscription) { s.PayloadMode = "xml" }, "/payload_mode", "want structured, binary or template"},
		{func(s *subscription.Subscription) { s.RetryPolicy = "forever" }, "/retry_policy", "want default or single"},
		{func(s *subscription.Subscription) { s.RateLimit = -1 }, "/rate_limit", "want 0 (unlimited) to 10000"},
		{func(s *subscription.Subscription) { s.Status = "gone" }, "/status", "want enabled or paused"},
		{func(s *subscription.Subscription) { s.Description = strings.Repeat("a", subscription.MaxDescription+1) }, "/description", "at most 1000 characters"},
		{func(s *subscription.Subscription) {
			s.Metadata = map[string]string{}
			for i := range subscription.MaxMetadata + 1 {
				s.Metadata[strings.Repeat("k", i+1)] = "v"
			}
		}, "/metadata", "at most 50 entries"},
		{func(s *subscription.Subscription) { s.Metadata = map[string]string{"a/b~c": strings.Repeat("v", 513)} }, "/metadata/a~1b~0c", "keys 1-64 bytes"},
		{func(s *subscription.Subscription) {
			s.Headers = map[string]string{}
			for i := range subscription.MaxHeaders + 1 {
				s.Headers[fmt.Sprintf("X-H%d", i)] = "v"
			}
		}, "/headers", "at most 20 headers"},
		{func(s *subscription.Subscription) { s.Headers = map[string]string{"Bad Name": "v"} }, "/headers/Bad Name", "not a valid header name"},
		{func(s *subscription.Subscription) { s.Headers = map[string]string{"Webhook-Id": "v"} }, "/headers/Webhook-Id", "reserved header"},
		{func(s *subscription.Subscription) {
			s.Headers = map[string]string{"X-Dup": "a"}
			s.SecretHeaders = map[string]subscription.SecretHeader{"x-dup": {Sealed: "s"}}
		}, "/headers/x-dup", "duplicate header"},
		{func(s *subscription.Subscription) { s.Headers = map[string]string{"X-A": "a\nb"} }, "/headers/X-A", "one line"},
		{func(s *subscription.Subscription) { s.Auth.Type = "digest" }, "/auth/type", "want none, basic or bearer"},
		{func(s *subscription.Subscription) {
			s.Auth = subscription.Auth{Type: subscription.AuthBasic, Username: "a:b"}
		}, "/auth/username", "without ':'"},
		{func(s *subscription.Subscription) {
			s.Auth = subscription.Auth{Type: subscription.AuthBasic, Username: "a"}
		}, "/auth/password", "required with basic auth"},
		{func(s *subscription.Subscription) { s.Auth = subscription.Auth{Type: subscription.AuthBearer} }, "/auth/token", "required with bearer auth"},
		{func(s *subscription.Subscription) { s.Auth.CACertPEM = "not pem" }, "/auth/ca_cert", "holds no PEM certificate"},
	} {
		s := valid()
		c.edit(&s)
		errs := s.Validate()
		found := false
		for _, e := range errs {
			if e.Pointer == c.pointer && strings.Contains(e.Detail, c.detail) {
				found = true
			}
		}
		if !found {
			t.Errorf("want %s %q, got %v", c.pointer, c.detail, errs)
		}
	}
}

// Validate reports every problem at once, not the first.
func TestValidateReportsEveryProblem(t *testing.T) {
	s := subscription.Subscription{PayloadMode: "xml", RetryPolicy: "x", Status: "x"}
	got := map[string]bool{}
	for _, e := range s.Validate() {
		got[e.Pointer] = true
	}
	for _, p := range []string{"/url", "/events", "/payload_mode", "/retry_policy", "/status"} {
		if !got[p] {
			t.Errorf("no error at %s: %v", p, got)
		}
	}
}

// ValidPattern repeats contract.ValidateType's syntax so that this package
// stays free of NATS; the two must agree.
func TestValidPatternAgreesWithContract(t *testing.T) {
	for _, typ := range []string{
		"alert.opened", "vmanage.alarm", "operation.timed_out", "x", "a-b.c_d", strings.Repeat("a", 128),
		"", "Alert.Opened", "a..b", ".a", "a.", "a.*", "a.>", "a b", "-a", strings.Repeat("a", 129), "ü",
	} {
		want := contract.ValidateType(typ) == nil
		if got := subscription.ValidPattern(typ); got != want && typ != "a.*" {
			t.Errorf("ValidPattern(%q) = %v, contract says %v", typ, got, want)
		}
		if want && !subscription.ValidPattern(typ+".*") && len(typ) <= 128 {
			t.Errorf("ValidPattern(%q) rejects the prefix pattern of a valid type", typ+".*")
		}
	}
}

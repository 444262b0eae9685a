package subscription

import (
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"unicode/utf8"
)

// Limits on what a subscription may hold.
const (
	MaxURL         = 2048
	MaxEvents      = 50
	MaxTemplate    = 16 << 10
	MaxRateLimit   = 10000 // requests per second
	MaxDescription = 1000  // characters
	MaxMetadata    = 50
)

// FieldError names one invalid member by its JSON pointer (RFC 6901) into
// the subscription's JSON form, and why. A list of them is what an API puts
// in an RFC 9457 problem's "errors".
type FieldError struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

func (e FieldError) Error() string { return e.Pointer + ": " + e.Detail }

// typeRE is the event-type syntax of contract.ValidateType (types
// become subject tokens). It is repeated here so that this package stays
// free of NATS; a test keeps the two in step.
var typeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$`)

// ValidPattern reports whether p is an event type ("alert.opened"), a
// prefix pattern ("alert.*") or "*".
func ValidPattern(p string) bool {
	if p == "*" {
		return true
	}
	t := strings.TrimSuffix(p, ".*")
	return len(t) <= 128 && typeRE.MatchString(t)
}

// Validate checks the rules every stored subscription keeps and returns
// every violation, in field order, or nil. Events left nil mean the
// member was never given ("required"); an empty list is a given, empty one.
//
// Validate checks the record alone, secrets sealed. What needs the world
// (whether the URL may be dialled, whether the event types are in the
// catalog, the endpoint's handshake) and what can only be seen in a
// credential's plain text, before the registry seals it (a bearer token
// of one word, a client certificate matching its key), are the registry's.
func (s *Subscription) Validate() []FieldError {
	var errs []FieldError
	add := func(ptr, format string, args ...any) {
		errs = append(errs, FieldError{Pointer: ptr, Detail: fmt.Sprintf(format, args...)})
	}
	switch {
	case s.URL == "":
		add("/url", "required")
	case len(s.URL) > MaxURL:
		add("/url", "longer than %d bytes", MaxURL)
	}
	switch n := len(s.Events); {
	case s.Events == nil:
		add("/events", "required")
	case n == 0:
		add("/events", "at least one event type or pattern is required")
	case n > MaxEvents:
		add("/events", "at most %d entries", MaxEvents)
	}
	for i, e := range s.Events {
		if !ValidPattern(e) {
			add(fmt.Sprintf("/events/%d", i), `want an event type ("alert.opened"), a prefix pattern ("alert.*") or "*"`)
		}
	}
	if strings.TrimSpace(s.Filter) != "" {
		if _, err := CompileFilter(s.Filter); err != nil {
			var fe *FilterError
			if errors.As(err, &fe) {
				add("/filter", "line %d, column %d: %s", fe.Line, fe.Column, fe.Message)
			} else {
				add("/filter", "%s", err.Error())
			}
		}
	}
	errs = append(errs, s.validateHeaders()...)
	switch s.PayloadMode {
	case PayloadStructured, PayloadBinary:
		if s.Template != "" {
			add("/template", "only with payload_mode template")
		}
	case PayloadTemplate:
		switch {
		case s.Template == "":
			add("/template", "required with payload_mode template")
		case len(s.Template) > MaxTemplate:
			add("/template", "longer than %d bytes", MaxTemplate)
		default:
			if _, err := template.New("body").Option("missingkey=zero").Parse(s.Template); err != nil {
				add("/template", "%s", strings.TrimPrefix(err.Error(), "template: "))
			}
		}
	default:
		add("/payload_mode", "want structured, binary or template")
	}
	if s.RetryPolicy != RetryDefault && s.RetryPolicy != RetrySingle {
		add("/retry_policy", "want default or single")
	}
	if s.RateLimit < 0 || s.RateLimit > MaxRateLimit {
		add("/rate_limit", "want 0 (unlimited) to %d requests per second", MaxRateLimit)
	}
	switch s.Status {
	case StatusEnabled, StatusPaused, StatusDisabled:
	default:
		add("/status", "want enabled or paused")
	}
	if utf8.RuneCountInString(s.Description) > MaxDescription {
		add("/description", "at most %d characters", MaxDescription)
	}
	if len(s.Metadata) > MaxMetadata {
		add("/metadata", "at most %d entries", MaxMetadata)
	}
	keys := make([]string, 0, len(s.Metadata))
	for k := range s.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys) // one answer for one input
	for _, k := range keys {
		if k == "" || len(k) > 64 || len(s.Metadata[k]) > 512 {
			add("/metadata/"+EscapePointer(k), "keys 1-64 bytes, values at most 512 bytes")
		}
	}
	errs = append(errs, s.Auth.validate()...)
	return errs
}

// validateHeaders checks the custom headers' names, across plain and
// secret ones, and the plain values (secret ones are sealed).
func (s *Subscription) validateHeaders() []FieldError {
	var errs []FieldError
	if n := len(s.Headers) + len(s.SecretHeaders); n > MaxHeaders {
		errs = append(errs, FieldError{"/headers", fmt.Sprintf("at most %d headers", MaxHeaders)})
	}
	names := make([]string, 0, len(s.Headers)+len(s.SecretHeaders))
	for k := range s.Headers {
		names = append(names, k)
	}
	for k := range s.SecretHeaders {
		if _, ok := s.Headers[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	seen := map[string]bool{}
	for _, name := range names {
		ptr := "/headers/" + EscapePointer(name)
		if p := HeaderNameProblem(name); p != "" {
			errs = append(errs, FieldError{ptr, p})
			continue
		}
		lower := strings.ToLower(name)
		if seen[lower] {
			errs = append(errs, FieldError{ptr, "duplicate header: names are case-insensitive"})
			continue
		}
		seen[lower] = true
		if v, ok := s.Headers[name]; ok {
			if p := HeaderValueProblem(v); p != "" {
				errs = append(errs, FieldError{ptr, p})
			}
		}
	}
	return errs
}

// validate checks what auth needs once its secrets are sealed: a known
// type and the credentials that type sends. An empty type is none.
func (a Auth) validate() []FieldError {
	var errs []FieldError
	switch a.Type {
	case "", AuthNone:
	case AuthBasic:
		if a.Username == "" || strings.ContainsAny(a.Username, ":\r\n") {
			errs = append(errs, FieldError{"/auth/username", "required with basic auth, without ':'"})
		}
		if a.PasswordSealed == "" {
			errs = append(errs, FieldError{"/auth/password", "required with basic auth"})
		}
	case AuthBearer:
		if a.TokenSealed == "" {
			errs = append(errs, FieldError{"/auth/token", "required with bearer auth"})
		}
	default:
		errs = append(errs, FieldError{"/auth/type", "want none, basic or bearer"})
	}
	if a.CACertPEM != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(a.CACertPEM)) {
		errs = append(errs, FieldError{"/auth/ca_cert", "holds no PEM certificate"})
	}
	return errs
}

// EscapePointer escapes s as one JSON pointer token (RFC 6901).
func EscapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

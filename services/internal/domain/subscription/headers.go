package subscription

import (
	"regexp"
	"strings"
)

// MaxHeaders bounds a subscription's custom headers, plain and secret.
const MaxHeaders = 20

var headerNameRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")

// reservedHeaders are set by Herald (signature, CloudEvents, transport,
// tracing) and may not be overridden by a tenant.
var reservedHeaders = map[string]bool{
	"content-type": true, "content-length": true, "content-encoding": true, "host": true,
	"authorization": true, "proxy-authorization": true, "traceparent": true, "tracestate": true,
	"baggage": true, "user-agent": true, "connection": true, "keep-alive": true, "te": true,
	"trailer": true, "transfer-encoding": true, "upgrade": true, "expect": true, "cookie": true,
}

func reservedHeader(name string) bool {
	n := strings.ToLower(name)
	return reservedHeaders[n] || strings.HasPrefix(n, "webhook-") || strings.HasPrefix(n, "ce-") ||
		strings.HasPrefix(n, "x-forwarded-") || strings.HasPrefix(n, "proxy-")
}

// HeaderNameProblem says why name cannot be a custom header, or "" when
// it can.
func HeaderNameProblem(name string) string {
	switch {
	case !headerNameRE.MatchString(name):
		return "not a valid header name"
	case reservedHeader(name):
		return "reserved header: Herald sets it"
	}
	return ""
}

// HeaderValueProblem says why v cannot be a custom header's value, or ""
// when it can. The registry asks it of every value before sealing the
// secret ones; Validate asks it of the plain ones.
func HeaderValueProblem(v string) string {
	if strings.ContainsAny(v, "\r\n\x00") || len(v) > 1024 {
		return "the value must be one line of at most 1024 bytes"
	}
	return ""
}

// SecretHeader is a custom header whose value is a credential: sealed with
// secretbox at rest, shown in views only by its hint, opened only by the
// dispatcher (and the registry's test call) when sending.
type SecretHeader struct {
	Sealed string `json:"sealed"`
	// Hint is "…" plus the value's last 4 characters when the value is
	// long enough (12 or more) that they give little away; "…" otherwise.
	Hint string `json:"hint"`
}

// HeaderHint is the hint of a secret header's value.
func HeaderHint(value string) string {
	if r := []rune(value); len(r) >= 12 {
		return "…" + string(r[len(r)-4:])
	}
	return "…"
}

// credentialWords in a header's name mark it as carrying a credential.
var credentialWords = []string{
	"auth", "token", "secret", "passw", "apikey", "api-key", "api_key",
	"credential", "cookie", "session", "signature",
}

// IsSecretHeader reports whether a custom header's name says it carries a
// credential (X-Api-Key, X-Auth-Token, X-Client-Secret, Foo-Key,
// X-Session, ...): such headers are sealed whether or not the caller marks
// them secret. Erring towards secret costs only the value's visibility.
func IsSecretHeader(name string) bool {
	n := strings.ToLower(name)
	for _, w := range credentialWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	for _, part := range strings.FieldsFunc(n, func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
		if part == "key" || part == "pass" || part == "pwd" || part == "sig" {
			return true
		}
	}
	return false
}

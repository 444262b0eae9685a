package subscription

import "strings"

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

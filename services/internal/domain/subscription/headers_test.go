package subscription

import "testing"

func TestIsSecretHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Api-Key": true, "Api-Key": true, "apikey": true, "X-API-KEY": true, "X-Auth-Token": true,
		"X-Access-Token": true, "X-Client-Secret": true, "Ocp-Apim-Subscription-Key": true,
		"X-Session-Id": true, "X-Hub-Signature": true, "X-Password": true, "X-Pass": true,
		"X-Authorization": true, "Set-Cookie": true, "Private_Key": true,
		"X-Team": false, "X-Request-Source": false, "X-Tenant": false, "Accept-Language": false, "X-Keyboard": false,
	} {
		if got := IsSecretHeader(name); got != want {
			t.Errorf("IsSecretHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestHeaderHint(t *testing.T) {
	for v, want := range map[string]string{
		"":                 "…",
		"short-secret":     "…cret",
		"abc12345":         "…",
		"sk_live_ABCDWXYZ": "…WXYZ",
	} {
		if got := HeaderHint(v); got != want {
			t.Errorf("HeaderHint(%q) = %q, want %q", v, got, want)
		}
	}
}

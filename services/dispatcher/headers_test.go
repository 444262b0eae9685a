package dispatcher

import (
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
)

// Sealed custom headers are opened only here, when sending, and sent
// beside the plain ones; the attempt record does not carry them.
func TestSecretHeadersSent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rc := newReceiver(t, nil)
	const apiKey = "sk_live_PLANTED_dispatch_1"
	sub, _ := h.putSub(subscription.Subscription{ID: "sub-1", URL: rc.URL + "/hook",
		Headers:       map[string]string{"X-Team": "noc"},
		SecretHeaders: map[string]subscription.SecretHeader{"X-Api-Key": {Sealed: h.keys.Seal(apiKey), Hint: subscription.HeaderHint(apiKey)}}})
	h.start(testConfig())
	h.notify("acme", "alert.opened", "n-1")
	got := rc.waitCount(t, 1)
	if got[0].Header.Get("X-Api-Key") != apiKey || got[0].Header.Get("X-Team") != "noc" {
		t.Errorf("sent headers %v", got[0].Header)
	}
	h.waitState("n-1", sub.ID, stateDelivered)
	for _, a := range h.attempts() {
		if strings.Contains(a.Error+a.ResponseSnippet+a.URL, apiKey) {
			t.Errorf("attempt holds the header's value: %+v", a)
		}
	}
}

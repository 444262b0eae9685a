package dispatcher

import (
	"context"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/domain/urlguard"
)

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	blocked := map[string]string{
		"loopback":            "127.0.0.1",
		"loopback v6":         "::1",
		"private 10":          "10.1.2.3",
		"private 172":         "172.16.5.4",
		"private 192":         "192.168.1.1",
		"link-local":          "169.254.10.1",
		"metadata aws":        "169.254.169.254",
		"metadata alibaba":    "100.100.100.200",
		"metadata aws v6":     "fd00:ec2::254",
		"cgnat":               "100.64.0.1",
		"unique local":        "fc00::1",
		"link-local v6":       "fe80::1",
		"unspecified":         "0.0.0.0",
		"ipv4-mapped":         "::ffff:127.0.0.1",
		"ipv4-mapped private": "::ffff:10.0.0.1",
		"nat64":               "64:ff9b::a9fe:a9fe",
		"nat64 private":       "64:ff9b::a00:1",
		"6to4":                "2002:7f00:1::1",
		"multicast":           "224.0.0.1",
	}
	for name, a := range blocked {
		if err := urlguard.CheckIP(netip.MustParseAddr(a), nil); err == nil {
			t.Errorf("%s %s allowed", name, a)
		}
	}
	// NAT64 and 6to4 are judged by the IPv4 address they embed.
	for _, a := range []string{"8.8.8.8", "2606:4700:4700::1111", "93.184.216.34", "64:ff9b::808:808"} {
		if err := urlguard.CheckIP(netip.MustParseAddr(a), nil); err != nil {
			t.Errorf("%s blocked: %v", a, err)
		}
	}
	allow := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	for _, a := range []string{"127.0.0.1", "::ffff:127.0.0.1"} {
		if err := urlguard.CheckIP(netip.MustParseAddr(a), allow); err != nil {
			t.Errorf("%s blocked despite the allow-list: %v", a, err)
		}
	}
	if err := urlguard.CheckIP(netip.MustParseAddr("10.0.0.1"), allow); err == nil {
		t.Error("10.0.0.1 allowed by a loopback allow-list")
	}
}

// Every blocked class is refused when dialling, before any byte is sent;
// a hostname resolving to loopback is refused the same way.
func TestDialTimeGuard(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	port := rc.URL[strings.LastIndex(rc.URL, ":")+1:]
	cfg := testConfig()
	cfg.AllowCIDRs = nil
	cfg.Timeout = 2e9
	s := newSender(cfg, nil)
	urls := []string{
		rc.URL, // 127.0.0.1
		"http://localhost:" + port,
		"http://[::1]:" + port,
		"http://[::ffff:127.0.0.1]:" + port,
		"http://10.0.0.1:9/",
		"http://172.16.0.1:9/",
		"http://192.168.0.1:9/",
		"http://169.254.169.254/latest/meta-data/",
		"http://100.100.100.200/",
		"http://100.64.0.1:9/",
		"http://[fd00:ec2::254]/",
		"http://[64:ff9b::7f00:1]:9/",
		"http://[2002:7f00:1::1]:9/",
		"http://0.0.0.0:" + port,
	}
	for _, u := range urls {
		sub := subscription.Subscription{ID: "s", Tenant: "acme", URL: u, PayloadMode: subscription.PayloadStructured}
		r := s.send(context.Background(), sub, payload.Delivery{Notification: []byte(`{}`)}, "msg_x")
		if r.class != payload.ErrClassBlocked && !unsupportedV6(r) {
			t.Errorf("%s: class %q err %v, want %s", u, r.class, r.err, payload.ErrClassBlocked)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver got %d requests through the guard", n)
	}
}

// unsupportedV6 tolerates hosts without IPv6, where the socket cannot be
// created and the guard never runs; nothing is sent either way.
func unsupportedV6(r result) bool {
	return r.err != nil && (strings.Contains(r.err.Error(), "address family not supported") ||
		strings.Contains(r.err.Error(), "cannot assign requested address") ||
		strings.Contains(r.err.Error(), "network is unreachable"))
}

// Through the whole pipeline: a hostname resolving to 127.0.0.1 is
// refused at dial time when loopback is not allowed, and the pair fails
// at once without reaching the receiver.
func TestBlockedHostnameInPipeline(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rc := newReceiver(t, nil)
	port := rc.URL[strings.LastIndex(rc.URL, ":")+1:]
	sub, _ := h.putSub(subscription.Subscription{ID: "sub-1", URL: "http://localhost:" + port + "/hook"})
	cfg := testConfig()
	cfg.AllowCIDRs = nil
	h.start(cfg)
	h.notify("acme", "alert.opened", "n-1")
	h.waitState("n-1", sub.ID, stateDeadLettered)
	as := h.attempts()
	if len(as) != 1 || as[0].ErrorClass != payload.ErrClassBlocked || as[0].Outcome != payload.OutcomeFailed {
		t.Errorf("attempts %+v", as)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver got %d requests", n)
	}
}

// The operator's allow-list (loopback here) applies only to subscriptions
// the registry marked OperatorAllowed: a tenant's URL that resolves to
// loopback is refused at dial time even though the operator allows it.
func TestAllowListOnlyForGrantedSubscriptions(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	s := newSender(testConfig(), nil)
	sub := subscription.Subscription{ID: "s", Tenant: "acme", URL: rc.URL, PayloadMode: subscription.PayloadStructured}
	r := s.send(context.Background(), sub, payload.Delivery{Notification: []byte(`{}`)}, "msg_x")
	if r.class != payload.ErrClassBlocked {
		t.Errorf("tenant's loopback URL: class %q err %v, want %s", r.class, r.err, payload.ErrClassBlocked)
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("receiver got %d requests through the guard", n)
	}
	sub.OperatorAllowed = true
	if r := s.send(context.Background(), sub, payload.Delivery{Notification: []byte(`{}`)}, "msg_x"); r.err != nil || r.status/100 != 2 {
		t.Errorf("operator's loopback URL: %d %v", r.status, r.err)
	}
}

// A URL pointing at a service that does not speak HTTP (the embedded NATS
// server) fails without its bytes: Go's client quotes the peer's answer
// in its error, which would put the NATS INFO banner in ATTEMPTS and the
// audit trail.
func TestNonHTTPPeerBytesNotRecorded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	u, err := url.Parse(h.srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	s := newSender(testConfig(), nil)
	sub := subscription.Subscription{ID: "s", Tenant: "acme", URL: "http://" + u.Host + "/", PayloadMode: subscription.PayloadStructured, OperatorAllowed: true}
	r := s.send(context.Background(), sub, payload.Delivery{Notification: []byte(`{}`)}, "msg_x")
	if r.err == nil {
		t.Fatalf("no error from a NATS port: status %d", r.status)
	}
	for _, leak := range []string{"INFO", "server_id", "nats", "version"} {
		if strings.Contains(r.err.Error(), leak) || strings.Contains(r.snippet, leak) {
			t.Errorf("the attempt repeats the peer's bytes (%q): %q %q", leak, r.err, r.snippet)
		}
	}
}

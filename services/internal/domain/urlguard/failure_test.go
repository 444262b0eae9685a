package urlguard

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// bannerServer accepts connections on loopback and greets each with
// banner before reading anything, as SMTP, NATS or Redis's errors do.
func bannerServer(t *testing.T, banner string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(banner))
			buf := make([]byte, 4096)
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.Read(buf)
			_, _ = c.Write([]byte(banner))
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// Failure's words never carry the peer's bytes, whatever it answered.
func TestFailureHidesPeerBytes(t *testing.T) {
	t.Parallel()
	const planted = "PLANTED-internal-banner"
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := closed.Addr().String()
	closed.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(plain.Close)

	for _, c := range []struct{ url, class string }{
		{"http://" + bannerServer(t, "220 mail "+planted+" ESMTP\r\n"), FailProtocol},
		{"http://" + bannerServer(t, "HTTP/1.1 "+planted+"\r\n\r\n"), FailProtocol},
		{"http://" + bannerServer(t, "HTTP/1.1 200 OK\r\nX: "+planted+"\x00\r\n\r\n"), FailProtocol},
		{"https://" + bannerServer(t, planted+"\r\n"), FailTLS},
		{"http://" + refused, FailRefused},
		{strings.Replace(plain.URL, "http://", "https://", 1), FailTLS},
	} {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		resp, err := client.Post(c.url, "text/plain", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: no error (status %d)", c.url, resp.StatusCode)
			continue
		}
		class, msg := Failure(err)
		if class != c.class || strings.Contains(msg, planted) || strings.Contains(msg, "127.0.0.1") {
			t.Errorf("%s: Failure(%q) = %s %q, want class %s without the peer's bytes or the URL", c.url, err, class, msg, c.class)
		}
	}
	blocked := &net.OpError{Op: "dial", Err: CheckIP(netip.MustParseAddr("10.0.0.1"), nil)}
	if class, msg := Failure(blocked); class != FailBlocked || !strings.Contains(msg, "private") {
		t.Errorf("blocked: %s %q", class, msg)
	}
	if class, _ := Failure(errors.New("something else")); class != FailConnection {
		t.Errorf("unknown error: %s", class)
	}
}

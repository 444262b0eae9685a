package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestListenVerifiesSignatures(t *testing.T) {
	secret := webhook.NewSecret()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"listen", "--addr", "127.0.0.1:0", "--secret", secret}, func(string) string { return "" }, &out, &errs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("listen returned %v", err)
		}
	}()
	addrRE := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	natstest.Eventually(t, 10*time.Second, func() error {
		m := addrRE.FindStringSubmatch(out.String())
		if m == nil {
			return fmt.Errorf("no address yet: %q %q", out.String(), errs.String())
		}
		base = m[1]
		return nil
	})
	signer, err := webhook.NewSigner([]string{secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string, sign bool) int {
		req, _ := http.NewRequest("POST", base+"/hook", strings.NewReader(body))
		if sign {
			signer.SetHeaders(req.Header, "msg_1", time.Now(), []byte(body))
		} else {
			signer.SetHeaders(req.Header, "msg_1", time.Now(), []byte("something else"))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(`{"type":"alert.opened"}`, true); got != http.StatusNoContent {
		t.Errorf("valid request answered %d", got)
	}
	if got := post(`{"type":"alert.opened"}`, false); got != http.StatusUnauthorized {
		t.Errorf("tampered request answered %d", got)
	}
	text := out.String()
	if !strings.Contains(text, "signature valid") || !strings.Contains(text, "INVALID: webhook: no signature matches") {
		t.Errorf("listen output lacks verdicts:\n%s", text)
	}
	if !strings.Contains(text, `"type": "alert.opened"`) {
		t.Errorf("listen output lacks the pretty body:\n%s", text)
	}
}

func TestClientCommandsNeedTenant(t *testing.T) {
	var out, errs syncBuffer
	err := run(context.Background(), []string{"subscriptions", "list"}, func(string) string { return "" }, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "--tenant is required") {
		t.Fatalf("err = %v", err)
	}
	err = run(context.Background(), []string{"tenants", "frobnicate"}, func(string) string { return "" }, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("err = %v", err)
	}
}

// The client commands drive a running Herald end to end: a tenant, a
// subscription, an event, and the attempt in the deliveries listing.
func TestClientAgainstHerald(t *testing.T) {
	h := startHerald(t)
	rcv := newReceiver(t)
	env := func(k string) string {
		switch k {
		case "HERALD_URL":
			return h.HTTPURL
		case "HERALD_TOKEN":
			return h.AdminToken
		case "HERALD_CONFIG":
			return t.TempDir() + "/config.json"
		}
		return ""
	}
	herald := func(args ...string) string {
		t.Helper()
		var out, errs syncBuffer
		if err := run(context.Background(), append(args, "--output", "json"), env, &out, &errs); err != nil {
			t.Fatalf("herald %v: %v (%s)", args, err, errs.String())
		}
		return out.String()
	}
	herald("tenants", "create", "--id", "cli", "--name", "CLI")
	sub := herald("subscriptions", "create", "--tenant", "cli", "--url", rcv.srv.URL+"/cli", "--events", "cli.*")
	if !strings.Contains(sub, `"secret": "whsec_`) {
		t.Fatalf("subscriptions create printed no secret: %s", sub)
	}
	herald("send", "--tenant", "cli", "--type", "cli.ping", "--data", `{"n":1}`)
	natstest.Eventually(t, 30*time.Second, func() error {
		if len(rcv.all()) != 1 {
			return fmt.Errorf("receiver got %d", len(rcv.all()))
		}
		var out, errs syncBuffer
		if err := run(context.Background(), []string{"deliveries", "--tenant", "cli", "--output", "json"}, env, &out, &errs); err != nil {
			return err
		}
		if !strings.Contains(out.String(), `"delivered"`) {
			return fmt.Errorf("deliveries: %s", out.String())
		}
		return nil
	})
	if v := herald("audit", "verify", "--tenant", "cli"); !strings.Contains(v, "true") {
		t.Errorf("audit verify: %s", v)
	}
	// A bad request shows the server's problem detail.
	var out, errs syncBuffer
	err := run(context.Background(), []string{"subscriptions", "create", "--tenant", "cli", "--url", "ftp://x", "--events", "a"}, env, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "/url") {
		t.Errorf("bad subscription: %v", err)
	}
}

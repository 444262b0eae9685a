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

	"github.com/heraldhq/herald/pkg/natstest"
	"github.com/heraldhq/herald/pkg/webhook"
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

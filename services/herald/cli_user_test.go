package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

// cliEnv points the CLI at h.
func cliEnv(t *testing.T, h started) func(string) string {
	cfg := t.TempDir() + "/config.json"
	return func(k string) string {
		switch k {
		case "HERALD_URL":
			return h.HTTPURL
		case "HERALD_TOKEN":
			return h.AdminToken
		case "HERALD_CONFIG":
			return cfg
		}
		return ""
	}
}

// cli runs one herald command in-process and returns its stdout and error.
func cli(env func(string) string, args ...string) (string, error) {
	var out, errs syncBuffer
	err := run(context.Background(), args, env, &out, &errs)
	return out.String(), err
}

// Each command parses only its own flags, before or after its arguments,
// and refuses any other with a clear error; --help lists exactly its flags.
func TestCLIFlagsPerCommand(t *testing.T) {
	none := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"test", "--tenant", "acme", "--type", "alert.opened", "sub_1"}, "herald test: flag provided but not defined: -type"},
		{[]string{"subscriptions", "get", "sub_1", "--url", "http://x"}, "herald subscriptions get: flag provided but not defined: -url"},
		{[]string{"tenants", "list", "--tenant", "acme"}, "flag provided but not defined: -tenant"},
		{[]string{"subscriptions", "get", "sub_1", "sub_2", "--tenant", "acme"}, `unexpected argument "sub_2"`},
		{[]string{"subscriptions", "get", "--tenant", "acme"}, "missing SUBSCRIPTION_ID"},
		{[]string{"subscriptions", "list"}, "--tenant is required"},
		{[]string{"tenants", "frobnicate"}, "unknown command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"replay", "--tenant", "acme", "--pair", "msg_1", "--only-failed"}, "--pair takes no"},
	} {
		_, err := cli(none, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("herald %s: err = %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}

	help, err := cli(none, "subscriptions", "get", "--help")
	if err != nil {
		t.Fatal(err)
	}
	flags := regexp.MustCompile(`(?m)^  -(\S+)`).FindAllStringSubmatch(help, -1)
	var names []string
	for _, f := range flags {
		names = append(names, f[1])
	}
	if got := strings.Join(names, ","); got != "output,server,tenant,token" {
		t.Errorf("subscriptions get --help lists flags %s:\n%s", got, help)
	}
	if help, _ := cli(none, "test", "-h"); strings.Contains(help, "-type") || !strings.Contains(help, "usage: herald test SUBSCRIPTION_ID") {
		t.Errorf("test --help:\n%s", help)
	}
	all, _ := cli(none, "help")
	for _, cmd := range commands {
		if !strings.Contains(all, "herald "+cmd.name) {
			t.Errorf("herald help lacks %q", cmd.name)
		}
	}
}

// A new user's session against a real embedded Herald: flags after the
// arguments, the subscription's signature scheme, a failing pair found as
// failed and by the user's own event id, tail from now with the error, a
// replay of the failing pair without --since, and verify of a tenant that
// does not exist.
func TestCLIAsANewUser(t *testing.T) {
	h := startHerald(t)
	env := cliEnv(t, h)
	var failing atomic.Bool
	var got atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
		if failing.Load() {
			http.Error(w, "receiver is down", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	must := func(args ...string) string {
		t.Helper()
		out, err := cli(env, args...)
		if err != nil {
			t.Fatalf("herald %s: %v", strings.Join(args, " "), err)
		}
		return out
	}

	must("tenants", "create", "--id", "acme", "--name", "Acme")
	var sub map[string]any
	if err := json.Unmarshal([]byte(must("subscriptions", "create", "--tenant", "acme", "--url", rcv.URL+"/hook", "--events", "server.*", "--output", "json")), &sub); err != nil {
		t.Fatal(err)
	}
	subID, _ := sub["id"].(string)

	// Flags after the positional argument; the answer names the signature.
	var view map[string]any
	if err := json.Unmarshal([]byte(must("subscriptions", "get", subID, "--tenant", "acme", "--output", "json")), &view); err != nil {
		t.Fatal(err)
	}
	if view["id"] != subID {
		t.Fatalf("subscriptions get SUB --tenant: %v", view)
	}
	sig, _ := view["signature"].(map[string]any)
	if sig["scheme"] != "standard-webhooks" || fmt.Sprint(sig["algorithms"]) != "[hmac-sha256]" || sig["header"] != "webhook-signature" {
		t.Errorf("subscription answer shows no signature scheme: %v", view)
	}

	// An old delivery, then tail: it shows only what comes after it.
	must("send", "--tenant", "acme", "--type", "server.rebooted", "--id", "evt-0", "--data", `{"n":0}`)
	natstest.Eventually(t, 30*time.Second, func() error {
		out, err := cli(env, "deliveries", "--tenant", "acme", "--outcome", "delivered")
		if err != nil || !strings.Contains(out, "delivered") {
			return fmt.Errorf("deliveries: %q %v", out, err)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	var tailOut, tailErr syncBuffer
	tailDone := make(chan error, 1)
	go func() { tailDone <- run(ctx, []string{"tail", "--tenant", "acme"}, env, &tailOut, &tailErr) }()
	defer func() {
		cancel()
		if err := <-tailDone; err != nil {
			t.Errorf("tail: %v", err)
		}
	}()

	failing.Store(true)
	must("send", "--tenant", "acme", "--type", "server.rebooted", "--id", "evt-1", "--data", `{"n":1}`)
	natstest.Eventually(t, 30*time.Second, func() error {
		out := tailOut.String()
		if !strings.Contains(out, "retrying") || !strings.Contains(out, "503") || !strings.Contains(out, "http_status") {
			return fmt.Errorf("tail shows %q", out)
		}
		return nil
	})
	if out := tailOut.String(); strings.Contains(out, "delivered") {
		t.Errorf("tail started at the beginning of history:\n%s", out)
	}

	// The failing pair is found as failed and as retrying, in text with its error.
	for _, o := range []string{"failed", "retrying"} {
		out := must("deliveries", "--tenant", "acme", "--outcome", o)
		if !strings.Contains(out, "retrying") || !strings.Contains(out, "503") || !strings.Contains(out, "http_status") || strings.Count(out, "\n") != 1 {
			t.Errorf("deliveries --outcome %s:\n%s", o, out)
		}
	}
	if _, err := cli(env, "deliveries", "--tenant", "acme", "--outcome", "bogus"); err == nil || !strings.Contains(err.Error(), "400") ||
		!strings.Contains(err.Error(), "delivered, retrying, failed, dead_lettered") {
		t.Errorf("--outcome bogus: %v", err)
	}
	// By the user's own event id.
	show := must("deliveries", "show", "evt-1", "--tenant", "acme")
	if !strings.Contains(show, "retrying") || !strings.Contains(show, "#1 ") || !strings.Contains(show, "audit: /v1/tenants/acme/audit?") {
		t.Errorf("deliveries show evt-1:\n%s", show)
	}
	var page deliveryPage
	if err := json.Unmarshal([]byte(must("deliveries", "show", "evt-1", "--tenant", "acme", "--output", "json")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].SubscriptionID != subID || page.Items[0].State != "retrying" {
		t.Fatalf("deliveries show evt-1: %+v", page)
	}
	nid := page.Items[0].NotificationID
	if out := must("deliveries", "show", nid, "--tenant", "acme"); !strings.Contains(out, page.Items[0].Pair) {
		t.Errorf("deliveries show by notification id %s:\n%s", nid, out)
	}

	// Replay the failing pair, without --since.
	failing.Store(false)
	out := must("replay", "--tenant", "acme", "--subscription", subID, "--only-failed", "--output", "json")
	if !strings.Contains(out, `"pairs": 1`) {
		t.Fatalf("replay --only-failed: %s", out)
	}
	natstest.Eventually(t, 30*time.Second, func() error {
		out, err := cli(env, "deliveries", "show", "evt-1", "--tenant", "acme")
		if err != nil || !strings.Contains(out, "  delivered") {
			return fmt.Errorf("after replay: %q %v", out, err)
		}
		return nil
	})

	if _, err := cli(env, "audit", "verify", "--tenant", "nosuch"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("audit verify --tenant nosuch: %v", err)
	}
	if out := must("audit", "verify", "--tenant", "acme"); !strings.Contains(out, "true") {
		t.Errorf("audit verify acme: %s", out)
	}
}

// Without a secret, listen cannot check a signature: it says unverified,
// never valid, even for a forged one.
func TestListenWithoutSecretSaysUnverified(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"listen", "--addr", "127.0.0.1:0", "--output", "json"}, func(string) string { return "" }, &out, &errs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("listen returned %v", err)
		}
	}()
	base := listenAddr(t, &out, &errs)
	req, _ := http.NewRequest("POST", base+"/hook", strings.NewReader(`{"type":"alert.opened"}`))
	req.Header.Set(webhook.HeaderID, "msg_forged")
	req.Header.Set(webhook.HeaderTimestamp, fmt.Sprint(time.Now().Unix()))
	req.Header.Set(webhook.HeaderSignature, "v1,Zm9yZ2VkIHNpZ25hdHVyZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var line map[string]any
	natstest.Eventually(t, 10*time.Second, func() error {
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, "{") {
				return json.Unmarshal([]byte(l), &line)
			}
		}
		return fmt.Errorf("no request printed: %q", out.String())
	})
	if line["signature"] != "unverified" || strings.Contains(out.String(), `"valid":true`) {
		t.Errorf("forged signature without a secret: %v", line)
	}
}

// listen --subscribe prints the subscription's secret, and a webhook signed
// with it verifies in an app that was given it.
func TestListenSubscribePrintsSecret(t *testing.T) {
	h := startHerald(t)
	env := cliEnv(t, h)
	if _, err := cli(env, "tenants", "create", "--id", "acme", "--name", "Acme"); err != nil {
		t.Fatal(err)
	}
	var appSecret atomic.Value
	var appVerified atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s, _ := appSecret.Load().(string)
		v, err := webhook.NewVerifier([]string{s}, nil)
		if err != nil || v.Verify(r.Header, body) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		appVerified.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(app.Close)

	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"listen", "--addr", "127.0.0.1:0", "--subscribe", "--tenant", "acme", "--events", "server.*", "--forward", app.URL}, env, &out, &errs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("listen returned %v", err)
		}
	}()
	listenAddr(t, &out, &errs)
	m := regexp.MustCompile(`signing secret: (whsec_\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("listen --subscribe printed no secret:\n%s", out.String())
	}
	appSecret.Store(m[1])
	if _, err := cli(env, "send", "--tenant", "acme", "--type", "server.rebooted", "--data", `{"n":1}`); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, func() error {
		if appVerified.Load() != 1 || !strings.Contains(out.String(), "signature valid") {
			return fmt.Errorf("app verified %d; listen: %q", appVerified.Load(), out.String())
		}
		return nil
	})
}

func listenAddr(t *testing.T, out, errs *syncBuffer) string {
	t.Helper()
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
	return base
}

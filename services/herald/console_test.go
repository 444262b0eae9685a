package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/heraldhq/herald/services/herald/console"
)

var updateConsoleShot = flag.Bool("update-console-screenshot", false,
	"rewrite the console screenshot the README shows (services/herald/console/testdata/deliveries.png)")

// browser starts headless Chromium from Debian's package with a throwaway
// profile and everything that would reach the network turned off.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		msg := "chromium is not installed: run .ci/install-chromium (apt-get install chromium) to run the console's browser test"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED, NOT PASSED: " + msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, bound to ctx only
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// artifacts is where the test keeps its screenshots: $HERALD_ARTIFACTS when
// set (CI keeps them), a temp dir otherwise.
func artifacts(t *testing.T) string {
	dir := os.Getenv("HERALD_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// flakyReceiver answers 422 with a body while failing is set, 200 otherwise.
type flakyReceiver struct {
	failing atomic.Bool
	calls   atomic.Int32
	auth    atomic.Pointer[string] // the last Authorization header
	srv     *httptest.Server
}

func newFlakyReceiver(t *testing.T) *flakyReceiver {
	r := &flakyReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.calls.Add(1)
		a := req.Header.Get("Authorization")
		r.auth.Store(&a)
		w.Header().Set("Content-Type", "application/json")
		if r.failing.Load() {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"error":"router RTR-42 unknown here"}`)
			return
		}
		_, _ = io.WriteString(w, `{"received":true}`)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	h := startHerald(t)
	rcv := newFlakyReceiver(t)
	dir := artifacts(t)
	call(t, h, "POST", "/v1/tenants", "application/json", map[string]any{"id": "acme", "name": "Acme Networks", "kind": "account"}, http.StatusCreated)

	// Everything the page logs; exceptions and CSP refusals fail the test.
	var logMu sync.Mutex
	var pageLog []string
	messages := chromedp.Console(ctx)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		for m, err := range messages {
			if err != nil {
				return // the tab's context ended
			}
			logMu.Lock()
			pageLog = append(pageLog, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
			logMu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx)
		<-logDone
		logMu.Lock()
		defer logMu.Unlock()
		for _, l := range pageLog {
			if strings.HasPrefix(l, "exception") || strings.Contains(l, "Content Security Policy") || strings.Contains(l, "Refused to") {
				t.Errorf("page: %s", l)
			}
		}
		if t.Failed() {
			t.Logf("page log:\n%s", strings.Join(pageLog, "\n"))
		}
	})

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot(t, ctx, dir, "failed.png")
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// The console answers with its policy.
	resp, err := http.Get(h.HTTPURL + console.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != console.ContentSecurityPolicy {
		t.Fatalf("GET /console/: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}

	// Sign in with the admin token; the tenant list appears.
	step("sign in",
		chromedp.Navigate(h.HTTPURL+"/console/"),
		chromedp.WaitVisible(css(`main input[type=password]`)),
		chromedp.SendKeys(css(`main input[type=password]`), h.AdminToken+"\n"),
		chromedp.WaitVisible(css(`#create-subscription`)),
		chromedp.WaitReady(css(`#tenant option[value=acme]`)),
	)

	// A bad CEL filter: the API's error shows under the field.
	form := `#create-subscription `
	step("create with a bad filter",
		chromedp.WaitNotPresent(css(`#event-types p.muted`)), // catalog asked for
		chromedp.WaitNotVisible(css(form+`input[name=token]`)),
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('#create-subscription select[name=auth_type]');
			s.value = 'bearer'; s.dispatchEvent(new Event('change')); })()`),
		chromedp.WaitNotVisible(css(form+`input[name=username]`)),
		chromedp.SendKeys(css(form+`input[name=token]`), "receiver-token-42"),
		chromedp.SendKeys(css(form+`input[name=url]`), rcv.srv.URL+"/hook"),
		chromedp.SendKeys(css(form+`input[name=events]`), "server.*"),
		chromedp.SendKeys(css(form+`textarea[name=filter]`), `data.severity ==`),
		chromedp.Click(css(form+`button[type=submit]`)),
		chromedp.WaitVisible(css(form+`textarea[name=filter][aria-invalid=true] + p.error`)),
	)
	// The event-type picker: the catalog's checkboxes, or free text with a
	// notice on a server without GET /v1/event-types.
	if catalog := probe(t, h, "/v1/event-types"); catalog == http.StatusNotFound {
		step("catalog absent", chromedp.WaitVisible(css(`#catalog-absent`)))
	} else {
		step("catalog", chromedp.WaitReady(css(`#event-types input[type=checkbox]`)))
	}
	if msg := text(form + `textarea[name=filter] + p.error`); !strings.Contains(msg, "line 1") {
		t.Errorf("filter error shown: %q, want the API's line and column", msg)
	}
	shot(t, ctx, dir, "filter-error.png")

	// Fixed, it is created; the secret is shown once and gone when dismissed.
	step("create",
		chromedp.SetValue(css(form+`textarea[name=filter]`), `data.router_id == "RTR-42"`),
		chromedp.Click(css(form+`button[type=submit]`)),
		chromedp.WaitVisible(css(`#secret-value`)),
		chromedp.WaitVisible(css(`#subscriptions tbody tr`)),
	)
	secret := text(`#secret-value`)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret shown: %q", secret)
	}
	if v := text(form + `textarea[name=filter] + p.error`); v != "" {
		t.Errorf("filter error still shown after success: %q", v)
	}
	step("dismiss secret", chromedp.Click(css(`[data-action=dismiss-secret]`)), chromedp.WaitNotPresent(css(`#secret-value`)))
	page, err := chromedp.Run(ctx, chromedp.OuterHTML(css(`html`)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page, secret) || strings.Contains(page, "whsec_") {
		t.Error("the secret is still in the page after it was dismissed")
	}
	if strings.Contains(page, "receiver-token-42") {
		t.Error("the endpoint's bearer token is still in the page after creation")
	}
	subID, err := chromedp.Run(ctx, chromedp.AttributeValue(css(`#subscriptions tbody tr`), "data-id"))
	if err != nil || !subID.Exists {
		t.Fatalf("subscription row: %v %v", subID, err)
	}
	row := fmt.Sprintf(`#subscriptions tr[data-id=%q] `, subID.Value)

	// A test call shows the receiver's answer.
	step("send test",
		chromedp.Click(css(row+`[data-action=test]`)),
		chromedp.WaitVisible(css(`#test-result`)),
	)
	if got := text(`#test-result`); !strings.Contains(got, "answered 200") || !strings.Contains(got, `{"received":true}`) {
		t.Errorf("test result: %q", got)
	}
	shot(t, ctx, dir, "subscriptions.png")

	// Rotation shows the new secret once; pause and resume flip the status.
	step("rotate",
		chromedp.Click(css(row+`[data-action=rotate]`)),
		chromedp.WaitVisible(css(`#secret-value`)),
	)
	if rotated := text(`#secret-value`); !strings.HasPrefix(rotated, "whsec_") || rotated == secret {
		t.Errorf("rotated secret shown: %q", rotated)
	}
	step("dismiss rotated secret", chromedp.Click(css(`[data-action=dismiss-secret]`)), chromedp.WaitNotPresent(css(`#secret-value`)))
	if page, _ := chromedp.Run(ctx, chromedp.OuterHTML(css(`html`))); strings.Contains(page, "whsec_") {
		t.Error("the rotated secret is still in the page after it was dismissed")
	}
	step("pause",
		chromedp.Click(css(row+`[data-action=pause]`)),
		chromedp.WaitVisible(css(row+`.badge.warn`)),
		chromedp.Click(css(row+`[data-action=pause]`)),
		chromedp.WaitVisible(css(row+`.badge.ok`)),
	)
	focused := func() string {
		t.Helper()
		f, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const e = document.activeElement;
			const tr = e && e.closest('tr'); return tr ? (tr.dataset.id || tr.dataset.outcome) + ' ' + e.dataset.action : e.tagName; })()`))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// The list re-rendered; the keyboard focus is back on the same button.
	if f := focused(); f != subID.Value+" pause" {
		t.Errorf("focus after resume is on %q, want the row's pause button", f)
	}

	// An event posted through the API shows up in the live list, failed.
	step("open deliveries",
		chromedp.Click(css(row+`a[href$="/deliveries"]`)),
		chromedp.WaitVisible(css(`#deliveries-empty`)),
	)
	rcv.failing.Store(true)
	call(t, h, "POST", "/v1/tenants/acme/events", "application/cloudevents+json",
		`{"specversion":"1.0","id":"evt-console-1","source":"urn:fleet:rtr","type":"server.rebooted","subject":"RTR-42","data":{"router_id":"RTR-42"}}`,
		http.StatusAccepted)
	step("see the failed delivery appear", chromedp.WaitVisible(css(`#deliveries tr[data-outcome=failed]`)))
	if got := text(`#deliveries tr[data-outcome=failed]`); !strings.Contains(got, "422") || !strings.Contains(got, "router RTR-42 unknown here") {
		t.Errorf("failed row: %q, want status and response snippet", got)
	}
	shot(t, ctx, dir, "delivery-failed.png")

	// Retry it once the receiver is fixed: the row turns delivered.
	rcv.failing.Store(false)
	step("retry",
		chromedp.Click(css(`#deliveries tr[data-outcome=failed] [data-action=retry]`)),
		chromedp.WaitVisible(css(`#deliveries tr[data-outcome=delivered]`)),
	)
	// The live list replaced the row; the focus moved to the new row.
	if f := focused(); f != "delivered history" {
		t.Errorf("focus after the retried row was replaced is on %q, want its history button", f)
	}
	step("history",
		chromedp.Click(css(`#deliveries tr[data-outcome=delivered] [data-action=history]`)),
		chromedp.WaitVisible(css(`#history-table tbody tr:nth-child(3)`)),
	)
	if got := text(`#history-table`); !strings.Contains(got, "failed") || !strings.Contains(got, "replay requested") || !strings.Contains(got, "delivered") {
		t.Errorf("attempt history: %q, want failed, replay requested and delivered", got)
	}
	if a := rcv.auth.Load(); a == nil || *a != "Bearer receiver-token-42" {
		t.Errorf("receiver saw Authorization %v, want the bearer token set in the form", a)
	}
	if n := rcv.calls.Load(); n != 3 {
		t.Errorf("receiver got %d calls, want 3 (test, failed, retried)", n)
	}
	b := shot(t, ctx, dir, "deliveries.png")
	if *updateConsoleShot {
		if err := os.WriteFile(filepath.Join("console", "testdata", "deliveries.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Replaying the last hour re-sends the one pair; the bar fills.
	step("replay",
		chromedp.Click(css(`#replay button[type=submit]`)),
		chromedp.WaitReady(css(`#replay-progress progress[max="1"][value="1"]`)),
	)
	if n := rcv.calls.Load(); n != 4 {
		t.Errorf("receiver got %d calls after the replay, want 4", n)
	}

	// Health draws the hour's chart; audit verifies; alerts render either
	// their list or the not-available state.
	step("health", chromedp.Navigate(h.HTTPURL+"/console/#/health"), chromedp.WaitVisible(css(`#health svg.chart rect.bar-ok`)))
	shot(t, ctx, dir, "health.png")
	step("audit",
		chromedp.Navigate(h.HTTPURL+"/console/#/audit"),
		chromedp.Click(css(`#verify`)),
		chromedp.WaitVisible(css(`#verify-result [data-ok=true]`)),
	)
	step("alerts",
		chromedp.Navigate(h.HTTPURL+"/console/#/alerts"),
		chromedp.WaitVisible(css(`#alerts > :not(.muted)`)),
		chromedp.SendKeys(css(`#protocol`), "0b6f3c5e-8f1a-4d2b-9a53-1c2d3e4f5a6b\n"),
		chromedp.WaitVisible(css(`#operation > :not(.muted)`)),
	)
	shot(t, ctx, dir, "alerts.png")

	// A sub-account's API key sees its own tenant only, not its parent's
	// subscriptions.
	call(t, h, "POST", "/v1/tenants", "application/json", map[string]any{"id": "acme-eu", "name": "Acme EU", "kind": "subaccount", "parent": "acme"}, http.StatusCreated)
	key, _ := call(t, h, "POST", "/v1/tenants/acme-eu/keys", "application/json", map[string]any{"name": "console"}, http.StatusCreated)["key"].(string)
	if key == "" {
		t.Fatal("no API key in the answer")
	}
	step("sign in with a tenant key",
		chromedp.Navigate(h.HTTPURL+"/console/#/subscriptions"),
		chromedp.Click(css(`#signout`)),
		chromedp.WaitVisible(css(`main input[type=password]`)),
		chromedp.SendKeys(css(`main input[type=password]`), key+"\n"),
		chromedp.WaitReady(css(`#tenant option[value=acme-eu]`)),
		chromedp.WaitVisible(css(`#create-subscription`)),
	)
	opts, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#tenant option')].map((o) => o.value)`))
	if err != nil || len(opts) != 1 || opts[0] != "acme-eu" {
		t.Errorf("tenants offered to the acme-eu key: %v (%v), want only acme-eu", opts, err)
	}
	step("no parent subscriptions", chromedp.WaitVisible(css(`#subs-empty`)))
	if got := text(`main`); strings.Contains(got, subID.Value) {
		t.Errorf("the acme-eu key sees acme's subscription %s", subID.Value)
	}

	// The key revoked while the console is open: the next call sends the
	// user back to sign-in, saying why.
	keyID, _ := call(t, h, "GET", "/v1/tenants/acme-eu/keys", "", nil, http.StatusOK)["keys"].([]any)[0].(map[string]any)["id"].(string)
	call(t, h, "DELETE", "/v1/tenants/acme-eu/keys/"+keyID, "", nil, http.StatusNoContent)
	step("revoked key", chromedp.Click(css(`nav a[href="#/health"]`)), chromedp.WaitVisible(css(`main input[type=password][aria-invalid=true]`)))
	if got := text(`main`); !strings.Contains(got, "no longer accepts this token") {
		t.Errorf("after the key was revoked the page says %q", got)
	}
	t.Logf("screenshots in %s", dir)
}

func shot(t *testing.T, ctx context.Context, dir, name string) []byte {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// A value the page failed to skip renders as the text "null".
	stray, err := chromedp.Run(sctx, chromedp.Evaluate[int](`[...document.querySelectorAll('main *')]
		.filter((e) => [...e.childNodes].some((n) => n.nodeType === 3 && /^(null|undefined)$/.test(n.textContent.trim()))).length`))
	if err != nil || stray != 0 {
		t.Errorf("%s: %d elements show null or undefined (%v)", name, stray, err)
	}
	// Every control has an accessible name: a label, aria-label or text.
	unnamed, err := chromedp.Run(sctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('input, select, textarea, progress, button, a[href]')]
		.filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
		.map((e) => e.outerHTML.slice(0, 80))`))
	if err != nil || len(unnamed) != 0 {
		t.Errorf("%s: controls without an accessible name: %q (%v)", name, unnamed, err)
	}
	b, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Errorf("keep screenshot: %v", err)
	}
	return b
}

// probe returns the status of an authenticated GET.
func probe(t *testing.T, h started, path string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", h.HTTPURL+path, nil)
	req.Header.Set("Authorization", "Bearer "+h.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/service"
)

// listenFlags declares herald listen: a local webhook receiver that prints
// each request readably and checks its signature with pkg/webhook, the same
// verifier Go receivers import. Without a secret or key it cannot check,
// and says so: a signature is then "unverified", never valid.
func listenFlags(fs *flag.FlagSet) runFunc {
	addr := fs.String("addr", "127.0.0.1:9000", "address to listen on")
	secrets := fs.String("secret", "", "comma-separated whsec_ secrets to verify with")
	pubKeys := fs.String("public-key", "", "comma-separated whpk_ ed25519 public keys to verify with")
	forward := fs.String("forward", "", "also forward each request to this URL and answer with its status")
	subscribe := fs.Bool("subscribe", false, "register this listener as a subscription (removed on exit)")
	tenant := fs.String("tenant", "", "tenant for --subscribe")
	events := fs.String("events", "*", "event patterns for --subscribe")
	tolerance := fs.Duration("tolerance", webhook.DefaultTolerance, "accepted clock skew of webhook-timestamp")
	return func(ctx context.Context, x *invocation, _ []string) error {
		return listen(ctx, x, listenOptions{addr: *addr, secrets: *secrets, pubKeys: *pubKeys, forward: *forward,
			subscribe: *subscribe, tenant: *tenant, events: *events, tolerance: *tolerance})
	}
}

type listenOptions struct {
	addr, secrets, pubKeys, forward string
	subscribe                       bool
	tenant, events                  string
	tolerance                       time.Duration
}

func listen(ctx context.Context, x *invocation, o listenOptions) error {
	c, stdout, stderr := x.c, x.stdout, x.stderr
	if o.subscribe && o.tenant == "" {
		return fmt.Errorf("--subscribe needs --tenant")
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	secretList, keyList := splitList(o.secrets), splitList(o.pubKeys)
	if o.subscribe {
		var sub map[string]any
		body := map[string]any{"url": "http://" + ln.Addr().String() + "/", "events": splitList(o.events), "description": "herald listen"}
		if err := c.api.DoJSON(ctx, "POST", "/v1/tenants/"+pathEscape(o.tenant)+"/subscriptions", body, &sub); err != nil {
			ln.Close()
			return fmt.Errorf("subscribe: %w", err)
		}
		id, _ := sub["id"].(string)
		fmt.Fprintf(stdout, "subscribed %s to %s as subscription %s\n", ln.Addr(), o.events, id)
		if s, ok := sub["secret"].(string); ok {
			secretList = append(secretList, s)
			// The app behind --forward verifies with it too; it is shown
			// once, like the create answer that holds it.
			fmt.Fprintf(stdout, "signing secret: %s\n", s)
		}
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := c.api.Do(dctx, "DELETE", "/v1/tenants/"+pathEscape(o.tenant)+"/subscriptions/"+pathEscape(id), "", nil, nil); err != nil {
				fmt.Fprintf(stderr, "remove subscription %s: %v\n", id, err)
			} else {
				fmt.Fprintf(stdout, "removed subscription %s\n", id)
			}
		}()
	}
	var verifier *webhook.Verifier
	if len(secretList)+len(keyList) > 0 {
		if verifier, err = webhook.NewVerifier(secretList, keyList); err != nil {
			ln.Close()
			return err
		}
		verifier.Tolerance = o.tolerance
	}
	r := &listener{out: stdout, verifier: verifier, forward: o.forward, json: c.output == "json",
		color: isTerminal(stdout), fwd: &http.Client{Timeout: 30 * time.Second}}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	srv := service.NewHTTPServer(r)
	err = service.ServeHTTP(ctx, srv, ln, 5*time.Second)
	if err == http.ErrServerClosed {
		err = nil
	}
	return err
}

type listener struct {
	mu       sync.Mutex
	out      io.Writer
	verifier *webhook.Verifier
	forward  string
	json     bool
	color    bool
	fwd      *http.Client
}

func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	sig := signatureUnverified
	detail := "no --secret or --public-key to check it with"
	if l.verifier != nil {
		if err := l.verifier.Verify(r.Header, body); err != nil {
			sig, detail = signatureInvalid, err.Error()
		} else {
			sig, detail = signatureValid, ""
		}
	}
	status := http.StatusNoContent
	if sig == signatureInvalid {
		status = http.StatusUnauthorized
	} else if l.forward != "" {
		status = l.forwardTo(r, body)
	}
	l.print(r, body, sig, detail, status)
	w.WriteHeader(status)
}

// Verdicts on a request's signature.
const (
	signatureValid      = "valid"
	signatureInvalid    = "invalid"
	signatureUnverified = "unverified" // nothing to check it with
)

func (l *listener) forwardTo(r *http.Request, body []byte) int {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, l.forward, bytes.NewReader(body))
	if err != nil {
		return http.StatusBadGateway
	}
	req.Header = r.Header.Clone()
	resp, err := l.fwd.Do(req)
	if err != nil {
		return http.StatusBadGateway
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (l *listener) print(r *http.Request, body []byte, sig, detail string, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		var data any = string(body)
		if json.Valid(body) {
			data = json.RawMessage(body)
		}
		_ = json.NewEncoder(l.out).Encode(map[string]any{
			"received_at": time.Now().UTC(), "method": r.Method, "path": r.URL.Path, "headers": r.Header,
			"body": data, "signature": sig, "signature_detail": detail, "answered": status,
		})
		return
	}
	green, red, yellow, dim, reset := "", "", "", "", ""
	if l.color {
		green, red, yellow, dim, reset = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[2m", "\x1b[0m"
	}
	var mark string
	switch sig {
	case signatureValid:
		mark = green + "✓ signature valid" + reset
	case signatureInvalid:
		mark = red + "✗ signature INVALID: " + detail + reset
	default:
		mark = yellow + "? signature unverified (" + detail + ")" + reset
	}
	fmt.Fprintf(l.out, "── %s %s %s  %s\n", time.Now().Format("15:04:05.000"), r.Method, r.URL.Path, mark)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(l.out, "%s%s: %s%s\n", dim, k, strings.Join(r.Header[k], ", "), reset)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "", "  ") == nil {
		fmt.Fprintln(l.out, pretty.String())
	} else {
		fmt.Fprintln(l.out, string(body))
	}
	fmt.Fprintf(l.out, "%sanswered %d%s\n", dim, status, reset)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

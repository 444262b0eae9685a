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

	"github.com/heraldhq/herald/pkg/service"
	"github.com/heraldhq/herald/pkg/webhook"
)

// listenCmd runs a local webhook receiver that prints each request readably
// and checks its signature with pkg/webhook, the same verifier Go receivers
// import.
func listenCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := &client{stdout: stdout}
	fs := flag.NewFlagSet("herald listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	globalFlags(fs, c)
	addr := fs.String("addr", "127.0.0.1:9000", "address to listen on")
	secrets := fs.String("secret", "", "comma-separated whsec_ secrets to verify with")
	pubKeys := fs.String("public-key", "", "comma-separated whpk_ ed25519 public keys to verify with")
	forward := fs.String("forward", "", "also forward each request to this URL and answer with its status")
	subscribe := fs.Bool("subscribe", false, "register this listener as a subscription (removed on exit)")
	tenant := fs.String("tenant", "", "tenant for --subscribe")
	events := fs.String("events", "*", "event patterns for --subscribe")
	tolerance := fs.Duration("tolerance", webhook.DefaultTolerance, "accepted clock skew of webhook-timestamp")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.resolve(getenv); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	secretList, keyList := splitList(*secrets), splitList(*pubKeys)
	if *subscribe {
		if *tenant == "" {
			return fmt.Errorf("--subscribe needs --tenant")
		}
		var sub map[string]any
		body, _ := json.Marshal(map[string]any{"url": "http://" + ln.Addr().String() + "/", "events": splitList(*events), "description": "herald listen"})
		if err := c.do(ctx, "POST", "/v1/tenants/"+pathEscape(*tenant)+"/subscriptions", "application/json", body, &sub); err != nil {
			ln.Close()
			return fmt.Errorf("subscribe: %w", err)
		}
		id, _ := sub["id"].(string)
		if s, ok := sub["secret"].(string); ok {
			secretList = append(secretList, s)
		}
		fmt.Fprintf(stdout, "subscribed %s to %s as subscription %s\n", ln.Addr(), *events, id)
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := c.do(dctx, "DELETE", "/v1/tenants/"+pathEscape(*tenant)+"/subscriptions/"+pathEscape(id), "", nil, nil); err != nil {
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
		verifier.Tolerance = *tolerance
	}
	r := &listener{out: stdout, verifier: verifier, forward: *forward, json: c.output == "json",
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
	verdict, valid := "not checked (no --secret or --public-key)", true
	if l.verifier != nil {
		if err := l.verifier.Verify(r.Header, body); err != nil {
			verdict, valid = "INVALID: "+err.Error(), false
		} else {
			verdict = "valid"
		}
	}
	status := http.StatusNoContent
	if !valid {
		status = http.StatusUnauthorized
	} else if l.forward != "" {
		status = l.forwardTo(r, body)
	}
	l.print(r, body, verdict, valid, status)
	w.WriteHeader(status)
}

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

func (l *listener) print(r *http.Request, body []byte, verdict string, valid bool, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json {
		var data any = string(body)
		if json.Valid(body) {
			data = json.RawMessage(body)
		}
		_ = json.NewEncoder(l.out).Encode(map[string]any{
			"received_at": time.Now().UTC(), "method": r.Method, "path": r.URL.Path, "headers": r.Header,
			"body": data, "signature": verdict, "valid": valid, "answered": status,
		})
		return
	}
	green, red, dim, reset := "", "", "", ""
	if l.color {
		green, red, dim, reset = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m"
	}
	mark := green + "✓ signature " + verdict + reset
	if !valid {
		mark = red + "✗ signature " + verdict + reset
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

// tail follows a tenant's delivery attempts by polling the audit's
// deliveries listing, printing each attempt once.
func tail(ctx context.Context, c *client, tenant, subscription, evType, outcome string, stdout io.Writer) error {
	seen := map[string]bool{}
	color := isTerminal(stdout) && c.output == "text"
	for {
		q := "?limit=100"
		if subscription != "" {
			q += "&subscription=" + pathEscape(subscription)
		}
		if outcome != "" {
			q += "&outcome=" + pathEscape(outcome)
		}
		var page map[string]any
		if err := c.do(ctx, "GET", "/v1/tenants/"+tenant+"/deliveries"+q, "", nil, &page); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		items, _ := page["items"].([]any)
		for i := len(items) - 1; i >= 0; i-- {
			m, _ := items[i].(map[string]any)
			id := fmt.Sprint(m["attemptId"])
			if seen[id] {
				continue
			}
			seen[id] = true
			if evType != "" && m["notificationType"] != evType {
				continue
			}
			if c.output == "json" {
				_ = json.NewEncoder(stdout).Encode(m)
				continue
			}
			line := oneLine(m)
			if color {
				switch m["outcome"] {
				case "delivered":
					line = "\x1b[32m" + line + "\x1b[0m"
				case "failed", "dead_lettered":
					line = "\x1b[31m" + line + "\x1b[0m"
				default:
					line = "\x1b[33m" + line + "\x1b[0m"
				}
			}
			fmt.Fprintln(stdout, line)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

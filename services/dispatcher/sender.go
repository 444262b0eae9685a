package dispatcher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"text/template"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/domain/payload"
	"github.com/heraldhq/herald/services/internal/domain/secretbox"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/domain/urlguard"
)

const (
	userAgent = "Herald/1 (+https://github.com/heraldhq/herald)"
	// snippetLimit is how much of a response is kept for ATTEMPTS.
	snippetLimit = 4 << 10
	// drainLimit is how much more is read so the connection can be reused.
	drainLimit = 64 << 10
	// Template sandbox: a template gets templateTimeout to run and may
	// write at most templateMaxOutput bytes.
	templateTimeout   = time.Second
	templateMaxOutput = 256 << 10
)

// result is the outcome of one HTTP attempt.
type result struct {
	status     int
	latency    time.Duration
	class      string // payload.ErrClass*
	err        error
	snippet    string
	retryAfter time.Duration
}

// sender posts pairs. It keeps one http.Transport per mTLS client
// certificate, so connections are never shared across credentials.
type sender struct {
	cfg  Config
	keys *secretbox.Keyring

	mu         sync.Mutex
	transports map[[32]byte]*http.Transport
}

func newSender(cfg Config, keys *secretbox.Keyring) *sender {
	return &sender{cfg: cfg, keys: keys, transports: map[[32]byte]*http.Transport{}}
}

// The operator's allow-list applies only to subscriptions it granted
// (OperatorAllowed): a tenant's URL dials global addresses only.
func (s *sender) transport(sub subscription.Subscription) (*http.Transport, error) {
	a := sub.Auth
	key := sha256.Sum256([]byte(a.ClientCertPEM + "\x00" + a.ClientKeySealed + "\x00" + a.CACertPEM + "\x00" + strconv.FormatBool(sub.OperatorAllowed)))
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.transports[key]; t != nil {
		return t, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.ClientCertPEM != "" {
		keyPEM, err := s.keys.Open(a.ClientKeySealed)
		if err != nil {
			return nil, fmt.Errorf("open client key: %w", err)
		}
		cert, err := tls.X509KeyPair([]byte(a.ClientCertPEM), []byte(keyPEM))
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if a.CACertPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(a.CACertPEM)) {
			return nil, errors.New("endpoint CA holds no PEM certificate")
		}
		tc.RootCAs = pool
	}
	var allow []netip.Prefix
	if sub.OperatorAllowed {
		allow = s.cfg.AllowCIDRs
	}
	d := &net.Dialer{Timeout: s.cfg.Timeout, KeepAlive: 30 * time.Second, Control: urlguard.DialControl(allow)}
	t := &http.Transport{
		Proxy:                 nil, // an environment proxy would bypass the dial-time guard
		DialContext:           d.DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   s.cfg.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	s.transports[key] = t
	return t, nil
}

// send makes one attempt. It never returns secrets in the result.
func (s *sender) send(ctx context.Context, sub subscription.Subscription, d payload.Delivery, webhookID string) result {
	req, err := s.request(ctx, sub, d, webhookID)
	if err == nil && d.Replay != "" {
		req.Header.Set(HeaderReplayOf, "msg_"+pairKey(d.NotificationID, d.SubscriptionID))
	}
	if err != nil {
		return result{class: payload.ErrClassInternal, err: err}
	}
	t, err := s.transport(sub)
	if err != nil {
		return result{class: payload.ErrClassTLS, err: err}
	}
	client := &http.Client{
		Transport: t,
		Timeout:   s.cfg.Timeout,
		// Redirects are never followed: the 3xx is the answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ctx, span := otel.Tracer("github.com/heraldhq/herald/services/dispatcher").Start(ctx, "POST",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attribute.String("http.request.method", http.MethodPost),
			attribute.String("server.address", req.URL.Hostname()),
			attribute.String("url.full", redactURL(sub.URL)),
			attribute.String("herald.webhook_id", webhookID)))
	defer span.End()
	req = req.WithContext(ctx)
	if sub.PropagateTrace {
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	start := time.Now()
	resp, err := client.Do(req)
	r := result{latency: time.Since(start)}
	if err != nil {
		r.class, r.err = classify(err), errors.New(redactErr(err, sub.URL))
		span.SetStatus(codes.Error, r.class)
		return r
	}
	defer resp.Body.Close()
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetStatus(codes.Error, strconv.Itoa(resp.StatusCode))
	}
	snip, _ := io.ReadAll(io.LimitReader(resp.Body, snippetLimit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	r.latency = time.Since(start)
	r.status, r.snippet = resp.StatusCode, string(bytes.ToValidUTF8(snip, []byte("\uFFFD")))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.class, r.err = payload.ErrClassRedirect, fmt.Errorf("redirect %d not followed", resp.StatusCode)
	default:
		r.class, r.err = payload.ErrClassHTTPStatus, fmt.Errorf("status %d", resp.StatusCode)
	}
	return r
}

func classify(err error) string {
	var ne net.Error
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var rh tls.RecordHeaderError
	switch {
	case errors.Is(err, urlguard.ErrBlocked):
		return payload.ErrClassBlocked
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return payload.ErrClassTimeout
	case errors.As(err, &certErr), errors.As(err, &alert), errors.As(err, &rh):
		return payload.ErrClassTLS
	}
	return payload.ErrClassConnection
}

// redactErr renders err without the URL's userinfo and query, which
// url.Error would otherwise repeat, and without the peer's bytes, which
// Go's client quotes from a malformed (non-HTTP) answer.
func redactErr(err error, raw string) string {
	_, msg := urlguard.Failure(err)
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " " + redactURL(raw) + ": " + msg
	}
	return msg
}

// redactURL drops userinfo, query and fragment.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	u.User, u.RawQuery, u.Fragment, u.ForceQuery = nil, "", "", false
	return u.String()
}

func (s *sender) request(ctx context.Context, sub subscription.Subscription, d payload.Delivery, webhookID string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("bad url: %s", redactURL(sub.URL))
	}
	if err := s.setHeaders(req, sub); err != nil {
		return nil, err
	}
	var body []byte
	switch sub.PayloadMode {
	case subscription.PayloadBinary:
		var e event.Event
		if err := json.Unmarshal(d.Notification, &e); err != nil {
			return nil, fmt.Errorf("decode notification: %w", err)
		}
		if err := cehttp.WriteRequest(binding.WithForceBinary(ctx), binding.ToMessage(&e), req); err != nil {
			return nil, fmt.Errorf("binary mode: %w", err)
		}
		// An event without data leaves the request without a body.
		if req.Body != nil {
			if body, err = io.ReadAll(req.Body); err != nil {
				return nil, err
			}
		}
	case subscription.PayloadTemplate:
		if body, err = renderTemplate(sub.Template, d.Notification); err != nil {
			return nil, err
		}
		if req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
	default:
		body = d.Notification
		req.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	req.Header.Set("User-Agent", userAgent)
	if err := s.authorize(req, sub.Auth); err != nil {
		return nil, err
	}
	signer, err := s.signer(sub.Auth)
	if err != nil {
		return nil, err
	}
	if signer != nil {
		signer.SetHeaders(req.Header, webhookID, time.Now(), body)
	} else {
		req.Header.Set(webhook.HeaderID, webhookID)
	}
	return req, nil
}

// setHeaders sets the subscription's custom headers, opening the sealed
// ones; an error names the header, never its value.
func (s *sender) setHeaders(req *http.Request, sub subscription.Subscription) error {
	for k, v := range sub.Headers {
		req.Header.Set(k, v)
	}
	for k, h := range sub.SecretHeaders {
		v, err := s.keys.Open(h.Sealed)
		if err != nil {
			return fmt.Errorf("open secret header %s: sealed value unreadable", k)
		}
		req.Header.Set(k, v)
	}
	return nil
}

func (s *sender) authorize(req *http.Request, a subscription.Auth) error {
	switch a.Type {
	case subscription.AuthBasic:
		pw, err := s.keys.Open(a.PasswordSealed)
		if err != nil {
			return errors.New("open basic-auth password: sealed value unreadable")
		}
		req.SetBasicAuth(a.Username, pw)
	case subscription.AuthBearer:
		tok, err := s.keys.Open(a.TokenSealed)
		if err != nil {
			return errors.New("open bearer token: sealed value unreadable")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return nil
}

// signer opens the active secrets; nil when the subscription has none.
func (s *sender) signer(a subscription.Auth) (*webhook.Signer, error) {
	var secrets, keys []string
	for _, sec := range a.ActiveSecrets(time.Now()) {
		v, err := s.keys.Open(sec.Sealed)
		if err != nil {
			return nil, fmt.Errorf("open signing secret %s: sealed value unreadable", sec.ID)
		}
		secrets = append(secrets, v)
	}
	if a.Ed25519KeySealed != "" {
		v, err := s.keys.Open(a.Ed25519KeySealed)
		if err != nil {
			return nil, errors.New("open ed25519 key: sealed value unreadable")
		}
		keys = append(keys, v)
	}
	if len(secrets)+len(keys) == 0 {
		return nil, nil
	}
	return webhook.NewSigner(secrets, keys)
}

// capWriter fails once more than n bytes are written, which stops the
// template's execution.
type capWriter struct {
	buf bytes.Buffer
	n   int
}

var errTemplateOutput = errors.New("template output exceeds the size limit")

func (w *capWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.n {
		return 0, errTemplateOutput
	}
	return w.buf.Write(p)
}

// renderTemplate runs a tenant's body template over the notification
// (a map of the structured CloudEvent). text/template cannot be
// interrupted, so a template still running at the timeout is abandoned:
// its goroutine ends when the template does, and its output is dropped.
func renderTemplate(src string, notification []byte) ([]byte, error) {
	tmpl, err := template.New("body").Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	var data map[string]any
	if err := json.Unmarshal(notification, &data); err != nil {
		return nil, fmt.Errorf("template data: %w", err)
	}
	w := &capWriter{n: templateMaxOutput}
	done := make(chan error, 1)
	go func() {
		// This goroutine outlives the handler's recover: a panic here would
		// take the process down.
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("template panicked: %v", v)
			}
		}()
		done <- tmpl.Execute(w, data)
	}()
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		return w.buf.Bytes(), nil
	case <-time.After(templateTimeout):
		return nil, errors.New("template: execution timed out")
	}
}

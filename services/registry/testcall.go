package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"text/template"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/domain/urlguard"
)

// TestEventType is the CloudEvent type of a test notification.
const TestEventType = "herald.test"

// maxTestAnswer is how much of the receiver's answer is returned.
const maxTestAnswer = 1 << 10

// testResult is the answer of POST .../test. Error is Herald's own
// description of ErrorClass: never the peer's bytes, which a non-HTTP
// service would otherwise have echoed (a NATS INFO banner).
type testResult struct {
	WebhookID  string `json:"webhook_id"`
	Delivered  bool   `json:"delivered"` // a 2xx answer
	Status     int    `json:"status,omitempty"`
	LatencyMS  int64  `json:"latency_ms"`
	Body       string `json:"body,omitempty"` // first 1 KiB of an HTTP answer
	ErrorClass string `json:"error_class,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Error classes of a test call besides urlguard's Fail* ones.
const (
	testClassHTTPStatus = "http_status" // the receiver answered, not 2xx
	testClassRedirect   = "redirect"    // a 3xx, not followed
	testClassPayload    = "payload"     // the subscription's template failed
	testClassURL        = "invalid_url"
)

// testSubscription sends one signed herald.test notification now, through
// the subscription's auth, headers, payload mode and the dial-time SSRF
// check, and reports what the receiver answered. It works on paused
// subscriptions too: that is when one tests an endpoint.
func (s *Service) testSubscription(w http.ResponseWriter, r *http.Request) {
	sub, _, ok := s.subFor(w, r)
	if !ok {
		return
	}
	res, err := s.sendTest(r.Context(), sub)
	if err != nil {
		internalError(w, r, s, "prepare test call", err)
		return
	}
	s.log.InfoContext(r.Context(), "test call", "tenant", sub.Tenant, "subscription_id", sub.ID, "status", res.Status, "latency_ms", res.LatencyMS)
	writeJSON(w, http.StatusOK, res)
}

func (s *Service) sendTest(ctx context.Context, sub subscription.Subscription) (testResult, error) {
	now := s.now().UTC()
	e := event.New()
	e.SetID(newID("test"))
	e.SetSource(Source)
	e.SetType(TestEventType)
	e.SetSubject(sub.ID)
	e.SetTime(now)
	e.SetExtension("tenant", sub.Tenant)
	data := map[string]any{"message": "Test notification from Herald", "subscription_id": sub.ID, "tenant": sub.Tenant}
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return testResult{}, err
	}
	hdr := http.Header{}
	body, err := s.renderBody(e, sub, data, hdr)
	if err != nil {
		return testResult{WebhookID: e.ID(), ErrorClass: testClassPayload, Error: err.Error()}, nil
	}
	signer, err := s.signer(sub, now)
	if err != nil {
		return testResult{}, err
	}
	signer.SetHeaders(hdr, e.ID(), now, body)
	for k, v := range sub.Headers {
		hdr.Set(k, v)
	}
	for k, h := range sub.SecretHeaders {
		v, err := s.keys.Open(h.Sealed)
		if err != nil {
			return testResult{}, fmt.Errorf("open secret header %s: %w", k, err)
		}
		hdr.Set(k, v)
	}
	switch sub.Auth.Type {
	case subscription.AuthBasic:
		pw, err := s.keys.Open(sub.Auth.PasswordSealed)
		if err != nil {
			return testResult{}, fmt.Errorf("open password: %w", err)
		}
		hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(sub.Auth.Username+":"+pw)))
	case subscription.AuthBearer:
		tok, err := s.keys.Open(sub.Auth.TokenSealed)
		if err != nil {
			return testResult{}, fmt.Errorf("open token: %w", err)
		}
		hdr.Set("Authorization", "Bearer "+tok)
	}
	hdr.Set("User-Agent", "Herald-Webhooks/1")
	client, err := s.testClient(sub)
	if err != nil {
		return testResult{}, err
	}
	defer client.CloseIdleConnections()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return testResult{WebhookID: e.ID(), ErrorClass: testClassURL, Error: "invalid URL"}, nil
	}
	req.Header = hdr
	start := time.Now()
	resp, err := client.Do(req)
	res := testResult{WebhookID: e.ID()}
	if err != nil {
		res.LatencyMS = time.Since(start).Milliseconds()
		res.ErrorClass, res.Error = urlguard.Failure(err)
		return res, nil
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxTestAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	res.LatencyMS = time.Since(start).Milliseconds()
	res.Status, res.Body = resp.StatusCode, string(bytes.ToValidUTF8(answer, []byte("\uFFFD")))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		res.Delivered = true
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.ErrorClass, res.Error = testClassRedirect, fmt.Sprintf("redirect %d not followed", resp.StatusCode)
	default:
		res.ErrorClass, res.Error = testClassHTTPStatus, fmt.Sprintf("status %d", resp.StatusCode)
	}
	return res, nil
}

// renderBody encodes e in the subscription's payload mode and sets the
// content headers.
func (s *Service) renderBody(e event.Event, sub subscription.Subscription, data any, hdr http.Header) ([]byte, error) {
	switch sub.PayloadMode {
	case subscription.PayloadBinary:
		hdr.Set("Content-Type", "application/json")
		hdr.Set("ce-specversion", e.SpecVersion())
		hdr.Set("ce-id", e.ID())
		hdr.Set("ce-source", e.Source())
		hdr.Set("ce-type", e.Type())
		hdr.Set("ce-subject", e.Subject())
		hdr.Set("ce-time", e.Time().Format(time.RFC3339Nano))
		hdr.Set("ce-tenant", sub.Tenant)
		return e.Data(), nil
	case subscription.PayloadTemplate:
		tpl, err := template.New("body").Option("missingkey=zero").Parse(sub.Template)
		if err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		var buf bytes.Buffer
		in := map[string]any{"id": e.ID(), "source": e.Source(), "type": e.Type(), "subject": e.Subject(),
			"time": e.Time(), "tenant": sub.Tenant, "data": data}
		if err := tpl.Execute(&buf, in); err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		hdr.Set("Content-Type", "application/json")
		return buf.Bytes(), nil
	default:
		hdr.Set("Content-Type", "application/cloudevents+json")
		return json.Marshal(e)
	}
}

func (s *Service) signer(sub subscription.Subscription, now time.Time) (*webhook.Signer, error) {
	var secrets, keys []string
	for _, sec := range sub.Auth.ActiveSecrets(now) {
		p, err := s.keys.Open(sec.Sealed)
		if err != nil {
			return nil, fmt.Errorf("open secret %s: %w", sec.ID, err)
		}
		secrets = append(secrets, p)
	}
	if sub.Auth.Ed25519KeySealed != "" {
		k, err := s.keys.Open(sub.Auth.Ed25519KeySealed)
		if err != nil {
			return nil, fmt.Errorf("open ed25519 key: %w", err)
		}
		keys = append(keys, k)
	}
	return webhook.NewSigner(secrets, keys)
}

// testClient dials only addresses urlguard permits (checked on the
// resolved address, so DNS rebinding is caught), follows no redirect, uses
// no proxy and gives up after TestTimeout.
func (s *Service) testClient(sub subscription.Subscription) (*http.Client, error) {
	var allow []netip.Prefix
	if sub.OperatorAllowed {
		allow = s.cfg.AllowCIDRs
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: urlguard.DialControl(allow)}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if sub.Auth.ClientCertPEM != "" {
		key, err := s.keys.Open(sub.Auth.ClientKeySealed)
		if err != nil {
			return nil, fmt.Errorf("open client key: %w", err)
		}
		cert, err := tls.X509KeyPair([]byte(sub.Auth.ClientCertPEM), []byte(key))
		if err != nil {
			return nil, errors.New("stored client certificate is invalid")
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if sub.Auth.CACertPEM != "" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(sub.Auth.CACertPEM))
		tc.RootCAs = pool
	}
	return &http.Client{
		Timeout: s.cfg.TestTimeout,
		Transport: &http.Transport{
			Proxy: nil, DialContext: dialer.DialContext, TLSClientConfig: tc,
			TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: s.cfg.TestTimeout,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

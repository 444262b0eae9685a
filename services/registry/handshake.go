package registry

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/domain/urlguard"
)

// The CloudEvents HTTP webhook abuse-protection handshake (HTTP 1.1 Web
// Hooks for Event Delivery, section 4). A subscription with handshake on
// is accepted only if its endpoint agrees to receive Herald's events: the
// registry sends
//
//	OPTIONS <url>
//	WebHook-Request-Origin: <HERALD_REGISTRY_HANDSHAKE_ORIGIN>
//	WebHook-Request-Rate: <rate_limit per minute, when one is set>
//
// and requires a 2xx answer whose WebHook-Allowed-Origin is that origin or
// "*", and, when a rate was requested, a WebHook-Allowed-Rate of "*" or at
// least the requested rate. It runs when the subscription is created, and
// again when the URL or the auth of a subscription with handshake on
// changes, or handshake is turned on. Asynchronous approval through
// WebHook-Request-Callback is not offered: the answer decides.

// Handshake header names (section 4.1 and 4.2).
const (
	hdrRequestOrigin = "WebHook-Request-Origin"
	hdrRequestRate   = "WebHook-Request-Rate"
	hdrAllowedOrigin = "WebHook-Allowed-Origin"
	hdrAllowedRate   = "WebHook-Allowed-Rate"
)

// runHandshake adds a /handshake field error unless the endpoint grants
// delivery. It runs only when everything else about sub is valid, so no
// request goes to an endpoint the registry would refuse anyway.
func (s *Service) runHandshake(ctx context.Context, in subInput, sub *subscription.Subscription, create bool, errs *fieldErrors) {
	if in.Handshake != nil {
		sub.Handshake = *in.Handshake
	}
	rerun := create || in.URL != nil || in.Auth != nil || in.Handshake != nil || in.RateLimit != nil
	if !sub.Handshake || !rerun || len(*errs) > 0 {
		return
	}
	if detail := s.handshake(ctx, *sub); detail != "" {
		errs.add("/handshake", "%s", detail)
	}
}

// handshake sends the validation request and returns why the endpoint did
// not grant delivery, or "" when it did.
func (s *Service) handshake(ctx context.Context, sub subscription.Subscription) string {
	client, err := s.testClient(sub)
	if err != nil {
		s.log.ErrorContext(ctx, "handshake client", "tenant", sub.Tenant, "subscription_id", sub.ID, "error", err)
		return "the handshake could not be prepared; try again"
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, sub.URL, nil)
	if err != nil {
		return "the URL cannot be requested"
	}
	req.Header.Set(hdrRequestOrigin, s.origin())
	var perMinute int
	if sub.RateLimit > 0 {
		perMinute = int(math.Ceil(sub.RateLimit * 60))
		req.Header.Set(hdrRequestRate, strconv.Itoa(perMinute))
	}
	req.Header.Set("User-Agent", "Herald-Webhooks/1")
	for k, v := range sub.Headers {
		req.Header.Set(k, v)
	}
	for k, h := range sub.SecretHeaders {
		v, err := s.keys.Open(h.Sealed)
		if err != nil {
			return "the handshake could not be prepared; try again"
		}
		req.Header.Set(k, v)
	}
	// The validation request carries the auth the deliveries will.
	switch sub.Auth.Type {
	case subscription.AuthBasic:
		pw, err := s.keys.Open(sub.Auth.PasswordSealed)
		if err != nil {
			return "the handshake could not be prepared; try again"
		}
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(sub.Auth.Username+":"+pw)))
	case subscription.AuthBearer:
		tok, err := s.keys.Open(sub.Auth.TokenSealed)
		if err != nil {
			return "the handshake could not be prepared; try again"
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		_, why := urlguard.Failure(err)
		return "the CloudEvents abuse-protection handshake (OPTIONS) failed: " + why
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Sprintf("the endpoint refused the CloudEvents abuse-protection handshake: OPTIONS answered %d %s; it must answer 200 with %s: %s (or *)",
			resp.StatusCode, http.StatusText(resp.StatusCode), hdrAllowedOrigin, s.origin())
	}
	origin := strings.TrimSpace(resp.Header.Get(hdrAllowedOrigin))
	switch {
	case origin == "":
		return fmt.Sprintf("the endpoint answered the handshake %d without %s; it must name the origin %s (or *) to grant delivery", resp.StatusCode, hdrAllowedOrigin, s.origin())
	case origin != "*" && !strings.EqualFold(origin, s.origin()):
		return fmt.Sprintf("the endpoint granted delivery to origin %q, not to %s (or *)", truncate(origin, 100), s.origin())
	}
	if perMinute == 0 {
		return ""
	}
	rate := strings.TrimSpace(resp.Header.Get(hdrAllowedRate))
	if rate == "*" {
		return ""
	}
	allowed, err := strconv.Atoi(rate)
	switch {
	case rate == "":
		return fmt.Sprintf("the handshake requested %d requests per minute (rate_limit %g/s) and the endpoint answered no %s", perMinute, sub.RateLimit, hdrAllowedRate)
	case err != nil || allowed < 1:
		return fmt.Sprintf("the endpoint's %s %q is not a positive integer or *", hdrAllowedRate, truncate(rate, 30))
	case allowed < perMinute:
		return fmt.Sprintf("the endpoint allows %d requests per minute, fewer than rate_limit %g/s (%d per minute): set rate_limit to at most %g",
			allowed, sub.RateLimit, perMinute, math.Floor(float64(allowed)/60*1000)/1000)
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// origin is the WebHook-Request-Origin Herald names itself with.
func (s *Service) origin() string {
	if s.cfg.HandshakeOrigin == "" {
		return "herald"
	}
	return s.cfg.HandshakeOrigin
}

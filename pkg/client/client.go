// Package client calls a running Herald's HTTP API (schemas/openapi.yaml)
// from Go. It is one of the packages meant for programs other than Herald:
// the herald CLI and load program use it, and so can an operator's own
// tooling.
//
// A Client builds every request in one place: the server's base URL, the
// bearer token (the admin token or a tenant API key) and the content type.
// An answer outside 2xx comes back as an *Error holding the server's RFC
// 9457 problem document, field errors included, so a caller can tell a
// validation failure (400 with Errors) from a throttle (429, RetryAfter)
// with errors.As.
//
// A Client is safe for concurrent use by several goroutines.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxAnswer bounds how much of an answer is read, so that a misbehaving
// server cannot make the caller buffer without limit.
const maxAnswer = 16 << 20

// Client calls one Herald server. Make it with New.
type Client struct {
	server string
	token  string
	http   *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as "Authorization: Bearer <token>" on every
// request: the operator's admin token or a tenant API key. Without it
// requests carry no credentials.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient sends requests through h instead of the default client
// (30-second timeout), e.g. to size its connection pool.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// New returns a client of the Herald at server, a base URL such as
// "http://127.0.0.1:8080" (a trailing slash is ignored).
func New(server string, opts ...Option) *Client {
	c := &Client{server: strings.TrimRight(server, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Server is the base URL requests go to.
func (c *Client) Server() string { return c.server }

// Do sends method to path (starting with "/", query included) with body
// of contentType, or no body when body is nil. A 2xx answer with JSON is
// decoded into out, unless out is nil or the answer is empty. Any other
// status returns an *Error; a failure to reach the server returns the
// transport's error.
func (c *Client) Do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return newError(resp, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// DoJSON is Do with in sent as application/json; a nil in sends no body.
func (c *Client) DoJSON(ctx context.Context, method, path string, in, out any) error {
	if in == nil {
		return c.Do(ctx, method, path, "", nil, out)
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode request of %s %s: %w", method, path, err)
	}
	return c.Do(ctx, method, path, "application/json", body, out)
}

// Ready asks the server's /readyz once: nil when it is ready to serve,
// an *Error (503) while it is still starting or draining.
func (c *Client) Ready(ctx context.Context) error {
	return c.Do(ctx, http.MethodGet, "/readyz", "", nil, nil)
}

// FieldError is one invalid input the server named: a JSON pointer into
// the request body (or a query parameter's name) and why.
type FieldError struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

// Error is an answer outside 2xx. When the server sent a problem document
// (RFC 9457) its members are filled in; Body is the answer as sent either
// way.
type Error struct {
	Status   int
	Type     string
	Title    string
	Detail   string
	Instance string
	Errors   []FieldError
	// RetryAfter is the Retry-After header of a 429 or 503, or zero.
	RetryAfter time.Duration
	Body       []byte
}

func newError(resp *http.Response, raw []byte) *Error {
	e := &Error{Status: resp.StatusCode, Body: raw}
	var p struct {
		Type     string       `json:"type"`
		Title    string       `json:"title"`
		Detail   string       `json:"detail"`
		Instance string       `json:"instance"`
		Errors   []FieldError `json:"errors"`
	}
	if json.Unmarshal(raw, &p) == nil {
		e.Type, e.Title, e.Detail, e.Instance, e.Errors = p.Type, p.Title, p.Detail, p.Instance, p.Errors
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	return e
}

// Error reads "STATUS TITLE: DETAIL" with one line per field error, or
// "STATUS: BODY" when the answer was no problem document.
func (e *Error) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%d: %s", e.Status, strings.TrimSpace(string(e.Body)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: %s", e.Status, e.Title, e.Detail)
	for _, fe := range e.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", fe.Pointer, fe.Detail)
	}
	return b.String()
}

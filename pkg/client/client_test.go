package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/client"
)

// request is what the test server saw.
type request struct {
	method, path, auth, contentType, body string
	hasBody                               bool
}

func server(t *testing.T, status int, header map[string]string, answer string) (*httptest.Server, *request) {
	t.Helper()
	seen := &request{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*seen = request{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b), r.ContentLength != 0}
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, seen
}

func TestDoJSONSendsAuthAndDecodes(t *testing.T) {
	srv, seen := server(t, http.StatusCreated, nil, `{"id":"sub-1"}`)
	c := client.New(srv.URL+"/", client.WithToken("adm_x"))
	var out struct{ ID string }
	if err := c.DoJSON(context.Background(), "POST", "/v1/tenants/acme/subscriptions?x=1", map[string]any{"url": "u"}, &out); err != nil {
		t.Fatal(err)
	}
	want := request{"POST", "/v1/tenants/acme/subscriptions?x=1", "Bearer adm_x", "application/json", `{"url":"u"}`, true}
	if *seen != want {
		t.Errorf("server saw %+v, want %+v", *seen, want)
	}
	if out.ID != "sub-1" {
		t.Errorf("decoded %+v", out)
	}
}

func TestDoWithoutBodyOrToken(t *testing.T) {
	srv, seen := server(t, http.StatusNoContent, nil, "")
	var out map[string]any
	if err := client.New(srv.URL).Do(context.Background(), "DELETE", "/v1/x", "", nil, &out); err != nil {
		t.Fatal(err)
	}
	if seen.hasBody || seen.auth != "" || seen.contentType != "" {
		t.Errorf("server saw %+v, want no body, auth or content type", *seen)
	}
	if out != nil {
		t.Errorf("an empty answer decoded into %v", out)
	}
}

func TestProblemBecomesError(t *testing.T) {
	srv, _ := server(t, http.StatusBadRequest, map[string]string{"Content-Type": "application/problem+json"},
		`{"type":"https://herald.dev/problems/invalid-request","title":"Bad Request","status":400,"detail":"2 invalid field(s)","instance":"/v1/tenants/acme/subscriptions",
		  "errors":[{"pointer":"/url","detail":"required"},{"pointer":"/events/0","detail":"unknown"}]}`)
	err := client.New(srv.URL).DoJSON(context.Background(), "POST", "/v1/tenants/acme/subscriptions", map[string]any{}, nil)
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *client.Error", err, err)
	}
	if e.Status != 400 || e.Title != "Bad Request" || e.Type != "https://herald.dev/problems/invalid-request" ||
		e.Instance != "/v1/tenants/acme/subscriptions" || len(e.Errors) != 2 || e.Errors[1] != (client.FieldError{Pointer: "/events/0", Detail: "unknown"}) {
		t.Errorf("error = %+v", e)
	}
	want := "400 Bad Request: 2 invalid field(s)\n  /url: required\n  /events/0: unknown"
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
}

func TestNonProblemErrorAndRetryAfter(t *testing.T) {
	srv, _ := server(t, http.StatusTooManyRequests, map[string]string{"Retry-After": "3"}, "slow down\n")
	err := client.New(srv.URL).Do(context.Background(), "GET", "/", "", nil, nil)
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 429 || e.RetryAfter != 3*time.Second {
		t.Fatalf("err = %#v", err)
	}
	if e.Error() != "429: slow down" {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestUndecodableAnswer(t *testing.T) {
	srv, _ := server(t, http.StatusOK, nil, "<html>")
	var out map[string]any
	err := client.New(srv.URL).Do(context.Background(), "GET", "/v1/tenants", "", nil, &out)
	if err == nil || !strings.Contains(err.Error(), "GET /v1/tenants") {
		t.Errorf("err = %v, want a decode error naming the call", err)
	}
}

func TestReady(t *testing.T) {
	ready, seen := server(t, http.StatusOK, nil, "ok")
	if err := client.New(ready.URL).Ready(context.Background()); err != nil || seen.path != "/readyz" {
		t.Errorf("Ready = %v, path %q", err, seen.path)
	}
	starting, _ := server(t, http.StatusServiceUnavailable, nil, "starting")
	var e *client.Error
	if err := client.New(starting.URL).Ready(context.Background()); !errors.As(err, &e) || e.Status != 503 {
		t.Errorf("Ready while starting = %v", err)
	}
}

func TestContextCancels(t *testing.T) {
	srv, _ := server(t, http.StatusOK, nil, "{}")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := client.New(srv.URL).Do(ctx, "GET", "/", "", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

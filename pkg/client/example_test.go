package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/heraldhq/herald/pkg/client"
)

// A caller creates a subscription and, on a 400, shows which fields the
// server refused.
func Example() {
	// A stand-in for Herald that refuses the subscription.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"title":"Bad Request","status":400,"detail":"1 invalid field(s)","errors":[{"pointer":"/events","detail":"required"}]}`)
	}))
	defer srv.Close()

	c := client.New(srv.URL, client.WithToken("hk_example"))
	var sub struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	err := c.DoJSON(context.Background(), http.MethodPost, "/v1/tenants/acme/subscriptions",
		map[string]any{"url": "https://example.com/hook"}, &sub)
	var e *client.Error
	if errors.As(err, &e) {
		for _, fe := range e.Errors {
			fmt.Printf("%d %s: %s\n", e.Status, fe.Pointer, fe.Detail)
		}
	}
	// Output: 400 /events: required
}

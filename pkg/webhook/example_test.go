package webhook_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/heraldhq/herald/pkg/webhook"
)

// A Go receiver verifies each request with the secret it was given when it
// subscribed, and keeps the old secret in the list during a rotation.
func ExampleVerifier() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	verifier, err := webhook.NewVerifier([]string{secret}, nil)
	if err != nil {
		panic(err)
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := verifier.Verify(r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	// What Herald sends:
	signer, _ := webhook.NewSigner([]string{secret}, nil)
	body := `{"type":"alert.opened"}`
	req := httptest.NewRequest("POST", "/hook", strings.NewReader(body))
	signer.SetHeaders(req.Header, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Now(), []byte(body))
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output: 204
}

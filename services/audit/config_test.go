package audit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/service"
	"github.com/heraldhq/herald/services/internal/transport/natstest"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := ConfigFromEnv(env(nil))
	if err != nil || c.Retention != 30*24*time.Hour || c.PurgeInterval != time.Hour {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = ConfigFromEnv(env(map[string]string{"HERALD_AUDIT_RETENTION": "48h", "HERALD_AUDIT_RETENTION_TENANTS": "acme=2160h, beta=24h"}))
	if err != nil || c.retention("acme") != 2160*time.Hour || c.retention("beta") != 24*time.Hour || c.retention("x") != 48*time.Hour {
		t.Fatalf("overrides: %+v %v", c, err)
	}
	_, err = ConfigFromEnv(env(map[string]string{"HERALD_AUDIT_RETENTION": "1m", "HERALD_AUDIT_PURGE_INTERVAL": "soon", "HERALD_AUDIT_RETENTION_TENANTS": "Bad=1h"}))
	for _, want := range []string{"HERALD_AUDIT_PURGE_INTERVAL", "HERALD_AUDIT_RETENTION_TENANTS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := ConfigFromEnv(env(map[string]string{"HERALD_AUDIT_RETENTION": "9000h"})); err == nil {
		t.Error("retention beyond the stream's MaxAge accepted")
	}
}

// Routes registered before Run answer 503 with Retry-After until ready.
func TestNotReadyAnswers503(t *testing.T) {
	cfg, _ := ConfigFromEnv(func(string) string { return "" })
	s := natstest.Run(t)
	svc, err := New(cfg, service.Deps{NC: s.NC, JS: s.JS, Auth: apiauth.NewAdminToken(adminToken)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Routes(mux)
	req := httptest.NewRequest(http.MethodGet, "/v1/tenants/acme/audit/verify", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || rec.Header().Get("Content-Type") != problem.ContentType {
		t.Errorf("before Run: %d %v", rec.Code, rec.Header())
	}
}

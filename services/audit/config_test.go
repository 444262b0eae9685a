package audit

import (
	"strings"
	"testing"
	"time"
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

package engine

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := ConfigFromEnv(env(nil))
	if err != nil || c.Workers != 128 || c.OperationDeadline != time.Hour || c.DeadlineOverride != 0 {
		t.Fatalf("defaults %+v %v", c, err)
	}
	c, err = ConfigFromEnv(env(map[string]string{"HERALD_ENGINE_WORKERS": "8", "HERALD_ENGINE_OPERATION_DEADLINE": "30m", "HERALD_ENGINE_DEADLINE_OVERRIDE": "2s"}))
	if err != nil || c.Workers != 8 || c.OperationDeadline != 30*time.Minute || c.DeadlineOverride != 2*time.Second {
		t.Fatalf("set %+v %v", c, err)
	}
	_, err = ConfigFromEnv(env(map[string]string{"HERALD_ENGINE_WORKERS": "0", "HERALD_ENGINE_OPERATION_DEADLINE": "soon"}))
	if err == nil || !strings.Contains(err.Error(), "WORKERS") && !strings.Contains(err.Error(), "workers") || !strings.Contains(err.Error(), "OPERATION_DEADLINE") {
		t.Fatalf("want both errors, got %v", err)
	}
}

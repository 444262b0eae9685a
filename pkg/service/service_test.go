package service

import "testing"

// Each service reports the lag of exactly the durables it reads.
func TestDurablesPerService(t *testing.T) {
	want := map[string]int{"": 8, "engine": 2, "dispatcher": 2, "audit": 4, "collector": 0, "registry": 0}
	for name, n := range want {
		if got := Durables(name); len(got) != n {
			t.Errorf("Durables(%q) = %v, want %d durables", name, got, n)
		}
	}
}

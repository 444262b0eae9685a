package contract

import "testing"

// Each service reports the lag of exactly the durables it reads, and the
// all-in-one reports every one.
func TestDurablesPerService(t *testing.T) {
	want := map[string]int{"": 9, "engine": 2, "dispatcher": 2, "audit": 5, "collector": 0, "registry": 0}
	for name, n := range want {
		got := Durables(name)
		if len(got) != n {
			t.Errorf("Durables(%q) = %v, want %d durables", name, got, n)
		}
		for _, d := range got {
			if d.Stream == "" || d.Name == "" {
				t.Errorf("Durables(%q): incomplete %+v", name, d)
			}
		}
	}
}

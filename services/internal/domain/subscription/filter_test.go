package subscription

import (
	"errors"
	"testing"
	"time"
)

func TestCompileFilterErrors(t *testing.T) {
	for _, c := range []struct {
		expr      string
		line, col int
	}{
		{`data.severity == `, 1, 18},
		{`type == 1`, 1, 6},
		{"type == \"a\" &&\n  nosuch == 1", 2, 3},
		{`"just a string"`, 1, 1},
		{``, 1, 1},
	} {
		_, err := CompileFilter(c.expr)
		var fe *FilterError
		if !errors.As(err, &fe) {
			t.Errorf("CompileFilter(%q) = %v, want *FilterError", c.expr, err)
			continue
		}
		if fe.Line != c.line || fe.Column != c.col {
			t.Errorf("CompileFilter(%q) at %d:%d (%s), want %d:%d", c.expr, fe.Line, fe.Column, fe.Message, c.line, c.col)
		}
	}
}

func TestFilterEval(t *testing.T) {
	ev := FilterEvent{ID: "1", Source: "vmanage", Type: "alert.opened", Subject: "a-1", Tenant: "acme", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	data := map[string]any{"severity": "Critical", "devices": []any{map[string]any{"name": "r1"}}, "count": 3.0}
	for _, c := range []struct {
		expr    string
		want    bool
		wantErr bool
	}{
		{`data.severity == "Critical"`, true, false},
		{`data.severity == "Minor"`, false, false},
		{`type.startsWith("alert.") && tenant == "acme"`, true, false},
		{`size(data.devices) > 0 && data.devices[0].name == "r1"`, true, false},
		{`data.count >= 2.0`, true, false},
		{`time > timestamp("2026-01-01T00:00:00Z")`, true, false},
		{`has(data.missing)`, false, false},
		{`data.missing == "x"`, false, true},
		{`data.severity`, false, true}, // dyn output that is not a bool
	} {
		f, err := CompileFilter(c.expr)
		if err != nil {
			t.Errorf("CompileFilter(%q): %v", c.expr, err)
			continue
		}
		got, err := f.Eval(ev, data)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("Eval(%q) = %v, %v; want %v, error %v", c.expr, got, err, c.want, c.wantErr)
		}
	}
}

func BenchmarkFilterEval(b *testing.B) {
	f, err := CompileFilter(`type.startsWith("alert.") && data.severity == "Critical" && size(data.devices) > 0`)
	if err != nil {
		b.Fatal(err)
	}
	ev := FilterEvent{ID: "1", Source: "s", Type: "alert.opened", Tenant: "acme", Time: time.Now()}
	data := map[string]any{"severity": "Critical", "devices": []any{"r1", "r2"}}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := f.Eval(ev, data); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkCompileFilter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompileFilter(`data.severity == "Critical" && tenant == "acme"`); err != nil {
			b.Fatal(err)
		}
	}
}

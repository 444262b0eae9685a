package schemas

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// Every schema has an example, every example has a schema, and each example
// validates: this covers types that any engineer adds to data/.
func TestEveryExampleValidates(t *testing.T) {
	if _, err := load(); err != nil {
		t.Fatal(err)
	}
	schemasSeen := map[string]bool{}
	for _, typ := range Types() {
		schemasSeen[typ] = true
		ex, err := Example(typ)
		if err != nil {
			t.Errorf("%s: no example: %v", typ, err)
			continue
		}
		if err := Validate(typ, ex); err != nil {
			t.Errorf("%s: example does not validate: %v", typ, err)
		}
	}
	examples, _ := fs.Glob(files, "data/*"+exampleSuffix)
	for _, n := range examples {
		typ := strings.TrimSuffix(strings.TrimPrefix(n, "data/"), exampleSuffix)
		if !schemasSeen[typ] {
			t.Errorf("%s has no schema", n)
		}
	}
	if len(schemasSeen) == 0 {
		t.Fatal("no schemas embedded")
	}
}

func TestValidateNamesPointer(t *testing.T) {
	for _, c := range []struct{ typ, data, pointer string }{
		{"clc.alert", `{"accountAlias":"DEMO","serverName":"S","triggers":[{"metric":"cpu","state":"maybe"}]}`, "/triggers/0/state"},
		{"vmanage.alarm", `{"uuid":"u","rule_name_display":"r","severity":"Critical","active":"yes","receive_time":1}`, "/active"},
		{"lmc.alert", `{"alertId":"a","title":"t"}`, ""},
		{"lmc.alert", `[1]`, ""},
	} {
		err := Validate(c.typ, []byte(c.data))
		var se *Error
		if !errors.As(err, &se) {
			t.Errorf("%s %s: got %v, want *Error", c.typ, c.data, err)
			continue
		}
		if se.Pointer != c.pointer || se.Detail == "" {
			t.Errorf("%s %s: pointer %q detail %q, want pointer %q", c.typ, c.data, se.Pointer, se.Detail, c.pointer)
		}
	}
	if err := Validate("no.such.type", []byte(`{}`)); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
	if Validate("lmc.alert", []byte(`{not json`)) == nil {
		t.Error("accepted malformed JSON")
	}
}

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

// The catalog covers the kinds of types a subscriber meets, each with its
// schema and example, and leaves out Herald's stream records.
func TestCatalog(t *testing.T) {
	entries, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Entry{}
	for _, e := range entries {
		byName[e.Name] = e
		if e.Description == "" || len(e.Schema) == 0 || len(e.Example) == 0 {
			t.Errorf("%s: description, schema or example missing", e.Name)
		}
		if strings.HasPrefix(e.Name, "herald.") {
			t.Errorf("%s: Herald's stream records are not event types", e.Name)
		}
		for _, b := range e.Becomes {
			if !Known(b) {
				t.Errorf("%s becomes %s, which has no schema", e.Name, b)
			}
		}
	}
	for name, cat := range map[string]string{
		"vmanage.alarm": CategorySource, "device.operation.result": CategorySource, "clc.server": CategorySource,
		"alert.opened": CategoryAlert, "alert.resolved": CategoryAlert, "operation.timed_out": CategoryOperation,
		"server.deleted": CategoryResource, "account.created": CategoryResource,
		"subscription.disabled": CategoryHerald, "endpoint.disabled": CategoryHerald,
	} {
		e, ok := byName[name]
		if !ok {
			t.Errorf("%s is not in the catalog", name)
			continue
		}
		if e.Category != cat || e.Delivered != (cat != CategorySource) {
			t.Errorf("%s: category %s delivered %v, want %s", name, e.Category, e.Delivered, cat)
		}
	}
}

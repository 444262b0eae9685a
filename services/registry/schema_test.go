package registry

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/heraldhq/herald/services/internal/domain/payload"
)

// The example decodes strictly into payload.Change, and the schema's
// members are exactly the type's JSON names, required ones included.
func TestChangeSchemaAndExample(t *testing.T) {
	raw, err := os.ReadFile("../../schemas/data/herald.change.example.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var ch payload.Change
	if err := dec.Decode(&ch); err != nil {
		t.Fatalf("example does not decode into payload.Change: %v", err)
	}
	if ch.Tenant == "" || ch.At.IsZero() || len(ch.Diff) == 0 {
		t.Errorf("example is thin: %+v", ch)
	}
	var schema struct {
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	sraw, err := os.ReadFile("../../schemas/data/herald.change.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(sraw, &schema); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[payload.Change]()
	var names []string
	for i := range typ.NumField() {
		tag := typ.Field(i).Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		names = append(names, name)
		if _, ok := schema.Properties[name]; !ok {
			t.Errorf("schema lacks %q", name)
		}
		if !strings.Contains(opts, "omitempty") && !slices.Contains(schema.Required, name) {
			t.Errorf("schema does not require %q", name)
		}
	}
	for p := range schema.Properties {
		if !slices.Contains(names, p) {
			t.Errorf("schema has %q, payload.Change does not", p)
		}
	}
	// Every action the registry records is in the schema's enum.
	for _, a := range []string{"created", "updated", "deleted", "rotated", "paused", "resumed"} {
		if !strings.Contains(string(schema.Properties["action"]), `"`+a+`"`) {
			t.Errorf("action %q missing from the schema", a)
		}
	}
}

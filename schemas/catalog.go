package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
)

// Categories of the event-type catalog.
const (
	CategorySource    = "source"    // an input the engine turns into notifications; never delivered itself
	CategoryAlert     = "alert"     // alert.*: an alert's lifecycle
	CategoryOperation = "operation" // operation.*: an asynchronous device operation
	CategoryResource  = "resource"  // account.*, user.*, server.*: resource changes
	CategoryHerald    = "herald"    // Herald's own notifications about a subscription
)

// Entry is one event type of the catalog: its name, what it is, the JSON
// Schema of its data and an example of that data.
type Entry struct {
	Name        string `json:"name"`
	Category    string `json:"category"`
	Description string `json:"description"`
	// Delivered is false for source types: subscribers receive what they
	// become (Becomes), not the input itself.
	Delivered bool            `json:"delivered"`
	Becomes   []string        `json:"becomes,omitempty"`
	Schema    json.RawMessage `json:"schema"`
	Example   json.RawMessage `json:"example"`
}

var catalog = sync.OnceValues(buildCatalog)

// Catalog lists the event types a tenant meets, sorted by name: every type
// with a schema in data/ except the records Herald keeps on its own streams
// (herald.*), which are never sent to subscribers. It is built from the
// schema files themselves (title, description, and x-herald-becomes on
// source types), so a new schema is in the catalog without another list.
func Catalog() ([]Entry, error) { return catalog() }

func buildCatalog() ([]Entry, error) {
	names, err := fs.Glob(files, "data/*"+schemaSuffix)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, n := range names {
		typ := strings.TrimSuffix(strings.TrimPrefix(n, "data/"), schemaSuffix)
		if strings.HasPrefix(typ, "herald.") {
			continue
		}
		schema, err := files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		example, err := Example(typ)
		if err != nil {
			return nil, fmt.Errorf("schemas: %s has no example: %w", typ, err)
		}
		var meta struct {
			Description string   `json:"description"`
			Becomes     []string `json:"x-herald-becomes"`
		}
		if err := json.Unmarshal(schema, &meta); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", n, err)
		}
		e := Entry{
			Name: typ, Category: category(typ, meta.Becomes), Description: meta.Description,
			Delivered: len(meta.Becomes) == 0, Becomes: meta.Becomes,
			Schema: compact(schema), Example: compact(example),
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func category(typ string, becomes []string) string {
	if len(becomes) > 0 {
		return CategorySource
	}
	switch ns, _, _ := strings.Cut(typ, "."); ns {
	case "alert":
		return CategoryAlert
	case "operation":
		return CategoryOperation
	case "subscription", "endpoint":
		return CategoryHerald
	default:
		return CategoryResource
	}
}

func compact(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

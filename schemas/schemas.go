// Package schemas holds the JSON Schema of every known event type's data,
// embedded from data/<type>.schema.json, next to an example
// (data/<type>.example.json) that the tests validate. The collector checks
// the data of every event of a known type against its schema.
package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed data/*.json
var files embed.FS

const (
	schemaSuffix  = ".schema.json"
	exampleSuffix = ".example.json"
)

// ErrUnknownType means no schema exists for an event type.
var ErrUnknownType = errors.New("schemas: unknown event type")

// Error is a validation failure: the JSON pointer into the data that failed
// and why. Pointer "" is the data itself.
type Error struct {
	Type    string
	Pointer string
	Detail  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s data at %q: %s", e.Type, e.Pointer, e.Detail)
}

var (
	load     = sync.OnceValues(compileAll)
	printer  = message.NewPrinter(language.English)
	errNoDoc = errors.New("data is not JSON")
)

// compileAll compiles every embedded schema once; a schema that does not
// compile is a build defect the tests catch.
func compileAll() (map[string]*jsonschema.Schema, error) {
	names, err := fs.Glob(files, "data/*"+schemaSuffix)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	urls := map[string]string{}
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", n, err)
		}
		url := "file:///herald/" + n
		if err := c.AddResource(url, doc); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", n, err)
		}
		urls[strings.TrimSuffix(strings.TrimPrefix(n, "data/"), schemaSuffix)] = url
	}
	out := make(map[string]*jsonschema.Schema, len(urls))
	for typ, url := range urls {
		s, err := c.Compile(url)
		if err != nil {
			return nil, fmt.Errorf("schemas: compile %s: %w", typ, err)
		}
		out[typ] = s
	}
	return out, nil
}

// Types lists the event types that have a schema, sorted.
func Types() []string {
	m, _ := load()
	out := make([]string, 0, len(m))
	for t := range m {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Known reports whether eventType has a schema.
func Known(eventType string) bool {
	m, _ := load()
	_, ok := m[eventType]
	return ok
}

// Example returns the committed example data of eventType.
func Example(eventType string) ([]byte, error) {
	return files.ReadFile("data/" + eventType + exampleSuffix)
}

// Validate checks data (JSON) against eventType's schema. It returns
// ErrUnknownType (wrapped) when there is no schema, and *Error naming the
// failing JSON pointer when the data does not conform.
func Validate(eventType string, data []byte) error {
	m, err := load()
	if err != nil {
		return err
	}
	s, ok := m[eventType]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownType, eventType)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &Error{Type: eventType, Detail: errNoDoc.Error() + ": " + err.Error()}
	}
	err = s.Validate(v)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	// The first leaf names the most precise location that failed.
	leaf := ve
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	return &Error{Type: eventType, Pointer: pointer(leaf.InstanceLocation), Detail: leaf.ErrorKind.LocalizedString(printer)}
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

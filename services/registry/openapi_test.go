package registry

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
)

// openAPIOperations reads "METHOD /path" for every operation of the
// document marked x-herald-service: registry. The document's layout is
// fixed (paths at two spaces, methods at four), so a line scan suffices and
// no YAML dependency is needed.
func openAPIOperations(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../schemas/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ops []string
	var inPaths bool
	var path, method string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && len(line) > 0 && line[0] != ' ':
			inPaths = false
		case !inPaths:
		case strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			path = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     ") && strings.HasSuffix(line, ":"):
			method = strings.ToUpper(strings.TrimSuffix(strings.TrimSpace(line), ":"))
		case strings.TrimSpace(line) == "x-herald-service: registry":
			ops = append(ops, method+" "+path)
		}
	}
	return ops
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := openAPIOperations(t)
	var served []string
	for _, r := range (&Service{}).routes() {
		served = append(served, r.pattern)
	}
	for _, r := range served {
		if !slices.Contains(doc, r) {
			t.Errorf("route %q is not in schemas/openapi.yaml", r)
		}
	}
	for _, d := range doc {
		if !slices.Contains(served, d) {
			t.Errorf("schemas/openapi.yaml documents %q, which the registry does not serve", d)
		}
	}
	if len(doc) != len(served) {
		t.Errorf("document has %d registry operations, registry serves %d", len(doc), len(served))
	}
}

package main

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// docOp is one operation of schemas/openapi.yaml; open ones declare
// `security: []`.
type docOp struct {
	pattern, service string
	open             bool
}

// openAPIOperations reads every operation of the document with the service
// its x-herald-service names. The layout is fixed (paths at two spaces,
// methods at four), so a line scan suffices and no YAML dependency is
// needed.
func openAPIOperations(t *testing.T) []docOp {
	t.Helper()
	f, err := os.Open("../../schemas/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ops []docOp
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
		case strings.HasPrefix(strings.TrimSpace(line), "x-herald-service: "):
			ops = append(ops, docOp{pattern: method + " " + path, service: strings.TrimPrefix(strings.TrimSpace(line), "x-herald-service: ")})
		case strings.HasPrefix(line, "      security: []") && len(ops) > 0 && ops[len(ops)-1].pattern == method+" "+path:
			ops[len(ops)-1].open = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ops
}

var routePattern = regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) /[^ ]*$`)

// servedPatterns finds every ServeMux pattern ("METHOD /path") in the
// services' and services/internal/service's non-test Go files: wherever a
// route is registered its pattern is a string literal, or a method literal
// plus a string constant ("GET "+console.Prefix).
func servedPatterns(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	var paths []string
	consts := map[string]string{} // string constants by unqualified name
	// The services and, of the shared packages under services/internal, the
	// one that serves routes (the admin endpoints).
	for _, dir := range []string{"../../services", "../../services/internal/service"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && path == filepath.Join("../../services", "internal") && dir == "../../services" {
				return filepath.SkipDir
			}
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			files, paths = append(files, f), append(paths, path)
			for _, d := range f.Decls {
				if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
					for _, spec := range g.Specs {
						vs := spec.(*ast.ValueSpec)
						for i, name := range vs.Names {
							if i < len(vs.Values) {
								if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
									consts[name.Name], _ = strconv.Unquote(lit.Value)
								}
							}
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]string{} // pattern -> file
	add := func(s, path string) {
		if routePattern.MatchString(s) {
			out[strings.ReplaceAll(s, "{$}", "")] = path // "/{$}", the exact root, is "/" in OpenAPI
		}
	}
	for i, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING {
					add(s, paths[i])
				}
			case *ast.BinaryExpr:
				lit, ok := n.X.(*ast.BasicLit)
				if !ok || n.Op != token.ADD || lit.Kind != token.STRING {
					return true
				}
				method, _ := strconv.Unquote(lit.Value)
				var name string
				switch y := n.Y.(type) {
				case *ast.Ident:
					name = y.Name
				case *ast.SelectorExpr:
					name = y.Sel.Name
				}
				if v, ok := consts[name]; ok {
					add(method+v, paths[i])
				}
			}
			return true
		})
	}
	return out
}

// TestOpenAPICoversEveryRoute: the document and the five services agree.
// Every route pattern in the code is documented, every documented operation
// is in the code, and the running all-in-one serves each documented
// operation through its real handler (an unauthenticated call gets the
// handler's 401 problem, not the mux's 404 or 405).
func TestOpenAPICoversEveryRoute(t *testing.T) {
	t.Parallel()
	doc := openAPIOperations(t)
	served := servedPatterns(t)
	var documented []string
	// "every": each process (health, metrics); "herald": the all-in-one's
	// console.
	services := map[string]bool{"collector": true, "registry": true, "engine": true, "dispatcher": true, "audit": true, "every": true, "herald": true}
	for _, op := range doc {
		documented = append(documented, op.pattern)
		if !services[op.service] {
			t.Errorf("%s: x-herald-service %q is not a service", op.pattern, op.service)
		}
		if _, ok := served[op.pattern]; !ok {
			t.Errorf("schemas/openapi.yaml documents %q, which no service serves", op.pattern)
		}
	}
	for p, file := range served {
		if !slices.Contains(documented, p) {
			t.Errorf("route %q (%s) is not in schemas/openapi.yaml", p, file)
		}
	}
	if len(doc) < 30 {
		t.Errorf("the document has %d operations; the scan of it is broken", len(doc))
	}

	h := startHerald(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, op := range doc {
		method, path, _ := strings.Cut(op.pattern, " ")
		path = regexp.MustCompile(`\{tenant\}`).ReplaceAllString(path, "acme")
		path = regexp.MustCompile(`\{adapter\}`).ReplaceAllString(path, "vmanage")
		path = regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(path, "x1")
		req, err := http.NewRequest(method, h.HTTPURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case op.open && (resp.StatusCode < 200 || resp.StatusCode > 399):
			t.Errorf("%s %s = %d %s, want its open handler's answer", method, path, resp.StatusCode, body)
		case !op.open && resp.StatusCode != http.StatusUnauthorized:
			t.Errorf("%s %s = %d %s, want 401 from its handler", method, path, resp.StatusCode, body)
		}
	}
}

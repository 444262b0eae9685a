package registry

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/heraldhq/herald/schemas"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
	"github.com/heraldhq/herald/services/internal/problem"
)

// The event-type catalog is schemas.Catalog: the schema files are the one
// list of the types Herald knows. This file serves it and checks a
// subscription's exact event names against it.

// listEventTypes is GET /v1/event-types[?category=]: every known type with
// its description, JSON Schema and example.
func (s *Service) listEventTypes(w http.ResponseWriter, r *http.Request) {
	all, err := schemas.Catalog()
	if err != nil {
		internalError(w, r, s, "load the event-type catalog", err)
		return
	}
	cat := r.URL.Query().Get("category")
	switch cat {
	case "", schemas.CategorySource, schemas.CategoryAlert, schemas.CategoryOperation, schemas.CategoryResource, schemas.CategoryHerald:
	default:
		problem.Write(w, r, problem.Invalid("invalid query parameters", problem.FieldError{
			Pointer: "category", Detail: "want source, alert, operation, resource or herald",
		}))
		return
	}
	out := listPage[schemas.Entry]{Items: []schemas.Entry{}}
	for _, e := range all {
		if cat == "" || e.Category == cat {
			out.Items = append(out.Items, e)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// checkEventTypes adds a field error for each exact name of events that a
// subscriber could never receive: a source type (the engine consumes it),
// a name close to a catalogued one (a typo), or any other name unless the
// operator (HERALD_REGISTRY_ALLOW_UNKNOWN_TYPES) or the tenant
// (settings.allow_unknown_types) allows custom types, which the engine
// passes through unchanged. Patterns ("alert.*", "*") are not checked.
func (s *Service) checkEventTypes(ctx context.Context, tenant string, events []string, errs *fieldErrors) {
	all, err := schemas.Catalog()
	if err != nil {
		s.log.ErrorContext(ctx, "load the event-type catalog", "error", err)
		return // the catalog is embedded: a build defect its tests catch
	}
	byName := make(map[string]schemas.Entry, len(all))
	for _, e := range all {
		byName[e.Name] = e
	}
	// Whether custom types are allowed is read once, and only if needed.
	var (
		custom    *bool
		customErr error
	)
	customOK := func() (bool, error) {
		if s.cfg.AllowUnknownTypes {
			return true, nil
		}
		if custom == nil {
			t, _, err := s.loadTenant(ctx, tenant)
			ok := t.Settings.AllowUnknownTypes
			custom, customErr = &ok, err
		}
		return *custom, customErr
	}
	for i, name := range events {
		if name == "*" || strings.HasSuffix(name, ".*") || !subscription.ValidPattern(name) {
			continue // patterns are free; a malformed name already has its error
		}
		ptr := fmt.Sprintf("/events/%d", i)
		if e, ok := byName[name]; ok {
			if !e.Delivered {
				errs.add(ptr, "%s is an input type that is never delivered: the engine turns it into %s; subscribe to those", name, strings.Join(e.Becomes, ", "))
			}
			continue
		}
		near := nearTypes(name, all)
		if len(near) > 0 && editDistance(name, near[0]) <= typoDistance {
			errs.add(ptr, "unknown event type %s; did you mean %s? (GET /v1/event-types lists them all)", name, strings.Join(near, ", "))
			continue
		}
		ok, err := customOK()
		switch {
		case err != nil && !ok:
			s.log.WarnContext(ctx, "read tenant for the custom-type check", "tenant", tenant, "error", err)
			errs.add(ptr, "unknown event type %s, and whether tenant %s allows custom types could not be read; try again", name, tenant)
		case ok:
		case len(near) > 0:
			errs.add(ptr, "unknown event type %s; near matches: %s (GET /v1/event-types lists them all; a pattern such as %s.* or the tenant setting allow_unknown_types admits custom types)", name, strings.Join(near, ", "), namespace(name))
		default:
			errs.add(ptr, "unknown event type %s (GET /v1/event-types lists them all; the tenant setting allow_unknown_types admits custom types)", name)
		}
	}
}

// typoDistance is the edit distance under which an unknown name is taken
// for a misspelt known one, and refused even where custom types are allowed.
const typoDistance = 2

// maxNear bounds the near matches named in an error.
const maxNear = 5

// nearTypes returns the delivered catalog names closest to name: those in
// its namespace and those within a third of its length in edits, nearest
// first.
func nearTypes(name string, all []schemas.Entry) []string {
	type cand struct {
		name string
		d    int
	}
	limit := max(typoDistance, len(name)/3)
	var cs []cand
	for _, e := range all {
		if !e.Delivered {
			continue
		}
		d := editDistance(name, e.Name)
		if d <= limit || namespace(e.Name) == namespace(name) {
			cs = append(cs, cand{e.Name, d})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int { return cmp.Or(cmp.Compare(a.d, b.d), cmp.Compare(a.name, b.name)) })
	var out []string
	for _, c := range cs[:min(len(cs), maxNear)] {
		out = append(out, c.name)
	}
	return out
}

func namespace(name string) string {
	ns, _, _ := strings.Cut(name, ".")
	return ns
}

// editDistance is the Levenshtein distance of two event type names (ASCII
// tokens, so bytes are characters).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/transport/bus"
)

// maxBody bounds every request body.
const maxBody = 1 << 20

// decodeJSON reads exactly one JSON object into dst, refusing unknown
// fields. Its problems name the offending member as a JSON pointer and
// never echo values (they may be secrets).
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) *problem.Problem {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if dec.More() || dec.Decode(&struct{}{}) != io.EOF {
			return problem.Invalid("the body must hold exactly one JSON object")
		}
		return nil
	}
	var (
		mbe *http.MaxBytesError
		ute *json.UnmarshalTypeError
		se  *json.SyntaxError
	)
	switch {
	case errors.As(err, &mbe):
		return problem.New(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBody))
	case errors.As(err, &ute):
		return problem.Invalid("a field has the wrong JSON type", problem.FieldError{
			Pointer: pointer(ute.Field), Detail: "want a JSON " + jsonKind(ute.Type.Kind().String()) + ", got " + ute.Value,
		})
	case errors.As(err, &se):
		return problem.Invalid(fmt.Sprintf("malformed JSON at byte %d", se.Offset))
	case errors.Is(err, io.EOF):
		return problem.Invalid("the body is empty; want a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return problem.Invalid("unknown field", problem.FieldError{Pointer: "/" + name, Detail: "unknown field"})
	default:
		return problem.Invalid("malformed JSON body")
	}
}

// pointer turns encoding/json's dotted field path into a JSON pointer.
func pointer(field string) string {
	if field == "" {
		return ""
	}
	return "/" + strings.ReplaceAll(field, ".", "/")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	default:
		return "number"
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fieldErrors collects every field error of one request.
type fieldErrors []problem.FieldError

func (f *fieldErrors) add(ptr, format string, args ...any) {
	*f = append(*f, problem.FieldError{Pointer: ptr, Detail: fmt.Sprintf(format, args...)})
}

// has reports whether a problem was found at ptr.
func (f fieldErrors) has(ptr string) bool {
	for _, e := range f {
		if e.Pointer == ptr {
			return true
		}
	}
	return false
}

func (f fieldErrors) problem() *problem.Problem {
	if len(f) == 0 {
		return nil
	}
	return problem.Invalid(fmt.Sprintf("%d invalid field(s)", len(f)), f...)
}

// page is a list request's window: keys after Cursor, at most Limit.
type page struct {
	Limit  int
	Cursor string // the last key of the previous page
}

const (
	defaultLimit = 50
	maxLimit     = 200
)

func readPage(r *http.Request) (page, *problem.Problem) {
	p := page{Limit: defaultLimit}
	var errs fieldErrors
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			errs.add("limit", "want an integer from 1 to %d", maxLimit)
		}
		p.Limit = n
	}
	if v := r.URL.Query().Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			errs.add("cursor", "not a cursor returned by this API")
		}
		p.Cursor = string(b)
	}
	return p, errs.problem()
}

// listPage is the shape of every list answer.
type listPage[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// window sorts keys and returns those after the cursor, up to limit, and the
// next cursor if more remain. The registry's buckets hold configuration
// (thousands of keys, not millions), so listing keys per page is fine.
func window(keys []string, p page) ([]string, string) {
	slices.Sort(keys)
	i, _ := slices.BinarySearch(keys, p.Cursor)
	if i < len(keys) && keys[i] == p.Cursor {
		i++
	}
	keys = keys[i:]
	if len(keys) > p.Limit {
		return keys[:p.Limit], base64.RawURLEncoding.EncodeToString([]byte(keys[p.Limit-1]))
	}
	return keys, ""
}

// listKeys lists kv's live keys under filter ("" for all); see
// bus.ListKeys for why not kv.ListKeys.
func (s *Service) listKeys(ctx context.Context, kv jetstream.KeyValue, filter string) ([]string, error) {
	return bus.ListKeys(ctx, s.js, kv.Bucket(), filter)
}

func internalError(w http.ResponseWriter, r *http.Request, s *Service, what string, err error) {
	s.log.ErrorContext(r.Context(), what, "error", err, "path", r.URL.Path)
	p := problem.New(http.StatusServiceUnavailable, what+"; try again")
	p.RetryAfter = 2 * time.Second
	problem.Write(w, r, p)
}

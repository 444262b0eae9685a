package subscription

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// MaxFilterLength bounds a filter expression's size.
const MaxFilterLength = 4096

// filterCostLimit bounds one evaluation, so that a tenant's filter cannot
// spin the dispatcher (e.g. comprehensions over a huge data array).
const filterCostLimit = 100_000

// filterEnv declares the variables a filter sees: the CloudEvent's
// attributes and its tenant extension as strings, time as a timestamp, and
// data as the decoded JSON (dyn).
var filterEnv = func() *cel.Env {
	env, err := cel.NewEnv(
		cel.Variable("id", cel.StringType),
		cel.Variable("source", cel.StringType),
		cel.Variable("type", cel.StringType),
		cel.Variable("subject", cel.StringType),
		cel.Variable("time", cel.TimestampType),
		cel.Variable("tenant", cel.StringType),
		cel.Variable("data", cel.DynType),
	)
	if err != nil {
		panic(err) // static declarations; cannot fail at run time
	}
	return env
}()

// FilterError is a filter that does not compile or type-check. Line and
// Column (both 1-based) locate the first error.
type FilterError struct {
	Line, Column int
	Message      string
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("filter: line %d, column %d: %s", e.Line, e.Column, e.Message)
}

// Filter is a compiled CEL filter. It is safe for concurrent use.
type Filter struct {
	prg  cel.Program
	expr string
}

// FilterEvent is what a filter sees of a CloudEvent besides its data.
type FilterEvent struct {
	ID, Source, Type, Subject, Tenant string
	Time                              time.Time
}

// CompileFilter parses and type-checks expr, which must yield a bool. The
// error is a *FilterError with the position of the first problem.
func CompileFilter(expr string) (*Filter, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, &FilterError{Line: 1, Column: 1, Message: "empty expression"}
	}
	if len(expr) > MaxFilterLength {
		return nil, &FilterError{Line: 1, Column: MaxFilterLength + 1, Message: fmt.Sprintf("expression longer than %d bytes", MaxFilterLength)}
	}
	ast, iss := filterEnv.Compile(expr)
	if iss != nil && iss.Err() != nil {
		e := iss.Errors()[0]
		return nil, &FilterError{Line: e.Location.Line(), Column: e.Location.Column() + 1, Message: e.Message}
	}
	if !ast.OutputType().IsExactType(types.BoolType) && !ast.OutputType().IsExactType(types.DynType) {
		return nil, &FilterError{Line: 1, Column: 1, Message: "expression must yield a bool, not " + ast.OutputType().String()}
	}
	prg, err := filterEnv.Program(ast, cel.CostLimit(filterCostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, &FilterError{Line: 1, Column: 1, Message: err.Error()}
	}
	return &Filter{prg: prg, expr: expr}, nil
}

// ErrNotBool means a filter (over dyn data) did not yield a bool.
var ErrNotBool = errors.New("filter did not yield a bool")

// Eval runs the filter on one event. data is the event's decoded JSON data
// (map[string]any, []any, ...; nil when there is none). An error (a missing
// key in data, a type mismatch, the cost limit) means the filter could not
// decide; the dispatcher treats it as "no match".
func (f *Filter) Eval(ev FilterEvent, data any) (bool, error) {
	out, _, err := f.prg.Eval(map[string]any{
		"id": ev.ID, "source": ev.Source, "type": ev.Type, "subject": ev.Subject,
		"tenant": ev.Tenant, "time": ev.Time, "data": data,
	})
	if err != nil {
		return false, fmt.Errorf("filter: %w", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, ErrNotBool
	}
	return b, nil
}

// String returns the source expression.
func (f *Filter) String() string { return f.expr }

package service

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// EnvReader reads a service's settings from the environment. A variable
// that is unset keeps the default already in its destination; every
// unparsable one is collected, so Err reports all of them at once.
type EnvReader struct {
	getenv func(string) string
	errs   []error
}

// NewEnvReader reads through getenv.
func NewEnvReader(getenv func(string) string) *EnvReader { return &EnvReader{getenv: getenv} }

// Parse calls set with the variable's value when it is set.
func (r *EnvReader) Parse(name string, set func(string) error) {
	if v := r.getenv(name); v != "" {
		if err := set(v); err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s %q: %w", name, v, err))
		}
	}
}

// Int reads an integer.
func (r *EnvReader) Int(name string, dst *int) {
	r.Parse(name, func(v string) (err error) { *dst, err = strconv.Atoi(v); return })
}

// Duration reads a Go duration such as "90s" or "4h".
func (r *EnvReader) Duration(name string, dst *time.Duration) {
	r.Parse(name, func(v string) (err error) { *dst, err = time.ParseDuration(v); return })
}

// Float reads a floating-point number.
func (r *EnvReader) Float(name string, dst *float64) {
	r.Parse(name, func(v string) (err error) { *dst, err = strconv.ParseFloat(v, 64); return })
}

// Bool reads true or false.
func (r *EnvReader) Bool(name string, dst *bool) {
	r.Parse(name, func(v string) (err error) { *dst, err = strconv.ParseBool(v); return })
}

// Err joins every problem seen.
func (r *EnvReader) Err() error { return errors.Join(r.errs...) }

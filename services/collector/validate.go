package collector

import (
	"errors"
	"fmt"
	"mime"
	"sort"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/heraldhq/herald/schemas"
	"github.com/heraldhq/herald/services/internal/domain/tenancy"
	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// extTenant is the extension every stored event carries.
const extTenant = "tenant"

// check validates e for tenant t and stamps the tenant extension. It
// returns the first problem, with a JSON pointer relative to the event.
func (s *Service) check(t tenancy.Tenant, e *event.Event) *problem.FieldError {
	if err := e.Validate(); err != nil {
		var ve event.ValidationError
		if errors.As(err, &ve) && len(ve) > 0 {
			keys := make([]string, 0, len(ve))
			for k := range ve {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return &problem.FieldError{Pointer: "/" + keys[0], Detail: ve[keys[0]].Error()}
		}
		return &problem.FieldError{Pointer: "", Detail: err.Error()}
	}
	if err := contract.ValidateType(e.Type()); err != nil {
		return &problem.FieldError{Pointer: "/type", Detail: err.Error()}
	}
	if v, ok := e.Extensions()[extTenant]; ok && fmt.Sprint(v) != t.ID {
		return &problem.FieldError{Pointer: "/tenant", Detail: fmt.Sprintf("the event names tenant %q but was posted to tenant %q", v, t.ID)}
	}
	if !schemas.Known(e.Type()) {
		if !s.cfg.AllowUnknownTypes && !t.Settings.AllowUnknownTypes {
			return &problem.FieldError{Pointer: "/type", Detail: fmt.Sprintf("type %q has no schema and tenant %s does not allow unknown types; known types: %s", e.Type(), t.ID, strings.Join(schemas.Types(), ", "))}
		}
	} else if fe := checkData(e); fe != nil {
		return fe
	}
	e.SetExtension(extTenant, t.ID)
	return nil
}

// checkData validates a known type's data against its schema.
func checkData(e *event.Event) *problem.FieldError {
	if e.DataBase64 || !isJSON(e.DataContentType()) {
		return &problem.FieldError{Pointer: "/datacontenttype", Detail: fmt.Sprintf("type %s carries JSON data; got %q", e.Type(), e.DataContentType())}
	}
	if len(e.Data()) == 0 {
		return &problem.FieldError{Pointer: "/data", Detail: "type " + e.Type() + " requires data"}
	}
	err := schemas.Validate(e.Type(), e.Data())
	var se *schemas.Error
	if errors.As(err, &se) {
		return &problem.FieldError{Pointer: "/data" + se.Pointer, Detail: se.Detail}
	}
	if err != nil {
		return &problem.FieldError{Pointer: "/data", Detail: err.Error()}
	}
	return nil
}

func isJSON(contentType string) bool {
	if contentType == "" {
		return true // the CloudEvents default for JSON-encoded events
	}
	m, _, err := mime.ParseMediaType(contentType)
	return err == nil && (m == "application/json" || m == "text/json" || strings.HasSuffix(m, "+json"))
}

package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/heraldhq/herald/services/internal/problem"
)

// Media types of the CloudEvents HTTP binding's structured and batch modes.
const (
	mediaStructured = "application/cloudevents+json"
	mediaBatch      = "application/cloudevents-batch+json"
)

// item is one event of a request on its way through validation and
// publishing. err is set when the event is rejected.
type item struct {
	ev      event.Event
	pointer string // prefix of the event in the request body: "" or "/3"
	err     *problem.FieldError
}

func rejectItem(pointer, field, detail string) item {
	return item{pointer: pointer, err: &problem.FieldError{Pointer: pointer + field, Detail: detail}}
}

// decodeHTTP reads a request body in any of the three content modes. Batch
// elements that do not parse become rejected items; a body that cannot be
// read as a whole is a problem.
func decodeHTTP(h http.Header, body []byte, maxBatch int) ([]item, bool, *problem.Problem) {
	media, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case media == mediaBatch:
		items, p := decodeBatch(body, maxBatch)
		return items, true, p
	case media == mediaStructured:
		var e event.Event
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, false, problem.Invalid("the body is not a structured CloudEvent", problem.FieldError{Pointer: "", Detail: err.Error()})
		}
		return []item{{ev: e}}, false, nil
	case len(h.Values("Ce-Specversion")) > 0:
		e, err := decodeBinary(h, body)
		if err != nil {
			var fe *fieldErr
			if errors.As(err, &fe) {
				return nil, false, problem.Invalid("invalid binary-mode CloudEvent header", problem.FieldError{Pointer: "header:" + fe.field, Detail: fe.detail})
			}
			return nil, false, problem.Invalid(err.Error())
		}
		return []item{{ev: e}}, false, nil
	}
	if media == "application/json" {
		// Most tools send application/json: a body that is itself a
		// CloudEvent (or an array of them) is taken as structured (or batch)
		// mode rather than refused for its label.
		switch sniffJSON(body) {
		case sniffEvent:
			var e event.Event
			if err := json.Unmarshal(body, &e); err != nil {
				return nil, false, problem.Invalid("the body is not a structured CloudEvent", problem.FieldError{Pointer: "", Detail: err.Error()})
			}
			return []item{{ev: e}}, false, nil
		case sniffBatch:
			items, p := decodeBatch(body, maxBatch)
			return items, true, p
		case sniffMalformed:
			var v any
			err := json.Unmarshal(body, &v)
			return nil, false, problem.Invalid("the application/json body is not valid JSON", problem.FieldError{Pointer: "", Detail: err.Error()})
		}
	}
	return nil, false, notACloudEvent(media)
}

// acceptedForms names the three ways to send a CloudEvent, for the 415.
const acceptedForms = "send a CloudEvent in one of three forms: structured (Content-Type " + mediaStructured +
	", or application/json, with a JSON object holding specversion), batch (Content-Type " + mediaBatch +
	", or application/json, with a JSON array of such objects), or binary (ce-specversion, ce-id, ce-source and ce-type headers, the data as the body)"

func notACloudEvent(media string) *problem.Problem {
	got := "no Content-Type"
	switch {
	case media == "application/json":
		got = "an application/json body that is neither a JSON object with specversion nor an array of them"
	case media != "":
		got = "Content-Type " + media + " without ce-specversion"
	}
	return problem.New(http.StatusUnsupportedMediaType, "the request is not a CloudEvent ("+got+"); "+acceptedForms)
}

type sniffed int

const (
	sniffNone      sniffed = iota
	sniffEvent             // a JSON object with a specversion member
	sniffBatch             // a JSON array whose elements include such an object
	sniffMalformed         // starts as a JSON object or array but does not parse
)

// sniffJSON tells whether an application/json body is a structured
// CloudEvent or a batch. It decodes only the top level and the elements'
// member names, so the full decode that follows reports the precise errors.
// A batch needs only one element with specversion: the others are then
// rejected one by one with their pointers, which helps more than a 415.
func sniffJSON(body []byte) sniffed {
	var probe struct {
		SpecVersion *json.RawMessage `json:"specversion"`
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case bytes.HasPrefix(trimmed, []byte("{")):
		if err := json.Unmarshal(body, &probe); err != nil {
			return sniffMalformed
		}
		if probe.SpecVersion != nil {
			return sniffEvent
		}
	case bytes.HasPrefix(trimmed, []byte("[")):
		var raws []json.RawMessage
		if json.Unmarshal(body, &raws) != nil {
			return sniffMalformed
		}
		for _, raw := range raws {
			probe.SpecVersion = nil
			if json.Unmarshal(raw, &probe) == nil && probe.SpecVersion != nil {
				return sniffBatch
			}
		}
	}
	return sniffNone
}

func decodeBatch(body []byte, maxBatch int) ([]item, *problem.Problem) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, problem.Invalid("a batch is a JSON array of structured CloudEvents", problem.FieldError{Pointer: "", Detail: err.Error()})
	}
	if len(raws) == 0 {
		return nil, problem.Invalid("the batch is empty", problem.FieldError{Pointer: "", Detail: "want at least one event"})
	}
	if len(raws) > maxBatch {
		return nil, problem.New(http.StatusRequestEntityTooLarge, fmt.Sprintf("the batch has %d events; at most %d are allowed per request", len(raws), maxBatch))
	}
	items := make([]item, len(raws))
	for i, raw := range raws {
		ptr := fmt.Sprintf("/%d", i)
		var e event.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			items[i] = rejectItem(ptr, "", "not a structured CloudEvent: "+err.Error())
			continue
		}
		items[i] = item{ev: e, pointer: ptr}
	}
	return items, nil
}

// fieldErr names the header that made a binary-mode event unreadable.
type fieldErr struct{ field, detail string }

func (e *fieldErr) Error() string { return e.field + ": " + e.detail }

// decodeBinary reads a binary-mode CloudEvent: attributes in ce- headers,
// percent-decoded as the HTTP binding (3.1.3.2) says and required to be
// UTF-8, data in the body with its Content-Type. Errors are *fieldErr.
func decodeBinary(h http.Header, body []byte) (event.Event, error) {
	e := event.New()
	for name, values := range h {
		lname := strings.ToLower(name)
		attr, ok := strings.CutPrefix(lname, "ce-")
		if !ok {
			continue
		}
		if len(values) != 1 {
			return e, &fieldErr{lname, "the header is repeated; an attribute has one value"}
		}
		v, err := url.PathUnescape(values[0])
		if err != nil {
			return e, &fieldErr{lname, "invalid percent-encoding: " + err.Error()}
		}
		if !utf8.ValidString(v) {
			return e, &fieldErr{lname, "the percent-decoded value is not UTF-8"}
		}
		if err := setAttribute(&e, attr, v); err != nil {
			return e, &fieldErr{lname, err.Error()}
		}
	}
	if ct := h.Get("Content-Type"); ct != "" {
		e.SetDataContentType(ct)
	}
	if len(body) > 0 {
		e.DataEncoded = body
	}
	return e, nil
}

func setAttribute(e *event.Event, attr, v string) error {
	switch attr {
	case "specversion":
		if v != event.CloudEventsVersionV1 {
			return fmt.Errorf("unsupported spec version %q: want 1.0", v)
		}
	case "id":
		e.SetID(v)
	case "source":
		if _, err := url.Parse(v); err != nil {
			return errors.New("not a URI-reference")
		}
		e.SetSource(v)
	case "type":
		e.SetType(v)
	case "subject":
		e.SetSubject(v)
	case "time":
		t, err := types.ParseTime(v)
		if err != nil {
			return fmt.Errorf("not an RFC 3339 time: %q", v)
		}
		e.SetTime(t)
	case "dataschema":
		if _, err := url.Parse(v); err != nil {
			return errors.New("not a URI")
		}
		e.SetDataSchema(v)
	case "datacontenttype":
		return errors.New("send the data's media type as Content-Type, not ce-datacontenttype")
	default:
		if err := e.Context.SetExtension(attr, v); err != nil {
			return err
		}
	}
	return nil
}

// Package cenats maps CloudEvents to NATS messages and back, in binary mode
// (attributes as "ce-" headers, percent-encoded as the CloudEvents NATS
// binding says) and in structured mode (application/cloudevents+json).
//
// It is built on sdk-go's binding package: a NATS message is a
// binding.MessageReader, and encoding goes through binding.Write, so the
// sdk does the attribute typing and validation. The sdk's own NATS protocol
// modules are separate Go modules that are not on the module proxy, so the
// mapping lives here.
package cenats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"
)

// Header names used by the mapping.
const (
	HeaderPrefix      = "ce-"
	HeaderContentType = "content-type"
	// ContentTypeStructured marks a structured-mode message.
	ContentTypeStructured = "application/cloudevents+json"
)

// Mode selects the content mode of an encoded message.
type Mode int

const (
	// Binary puts attributes in ce- headers and data in the payload.
	Binary Mode = iota
	// Structured puts the whole event, as JSON, in the payload.
	Structured
)

// Errors returned by Decode.
var (
	// ErrNotCloudEvent means the message has neither a ce-specversion header
	// nor a structured content type.
	ErrNotCloudEvent = errors.New("cenats: message is not a CloudEvent")
	// ErrMalformedHeader means a ce- header value is not valid
	// percent-encoded UTF-8.
	ErrMalformedHeader = errors.New("cenats: malformed header")
)

var versions = spec.WithPrefix(HeaderPrefix)

// Encode returns a NATS message for subject that carries e in the given mode.
// The event is validated first.
func Encode(ctx context.Context, subject string, e event.Event, mode Mode) (*nats.Msg, error) {
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("cenats: encode event %q: %w", e.ID(), err)
	}
	msg := &nats.Msg{Subject: subject, Header: nats.Header{}}
	w := &msgWriter{msg: msg}
	if mode == Structured {
		ctx = binding.WithForceStructured(ctx)
	} else {
		ctx = binding.WithForceBinary(ctx)
	}
	if _, err := binding.Write(ctx, binding.ToMessage(&e), w, w); err != nil {
		return nil, fmt.Errorf("cenats: encode event %q: %w", e.ID(), err)
	}
	return msg, nil
}

// Decode reads the CloudEvent in a NATS message's header and data, in either
// mode, and validates it. It returns ErrNotCloudEvent or ErrMalformedHeader
// (wrapped) for messages it cannot read.
func Decode(header nats.Header, data []byte) (event.Event, error) {
	m := &msgReader{header: header, data: data}
	if m.ReadEncoding() == binding.EncodingUnknown {
		return event.Event{}, ErrNotCloudEvent
	}
	e, err := binding.ToEvent(context.Background(), m)
	if err != nil {
		return event.Event{}, fmt.Errorf("cenats: decode: %w", err)
	}
	if err := e.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("cenats: decode: invalid event: %w", err)
	}
	return *e, nil
}

// msgReader adapts a NATS message to binding.MessageReader.
type msgReader struct {
	header nats.Header
	data   []byte
}

func (m *msgReader) get(name string) string {
	if v, ok := m.header[name]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range m.header {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func (m *msgReader) ReadEncoding() binding.Encoding {
	// ce-specversion decides first: a binary-mode event may declare its data
	// application/cloudevents+json, and a structured message never carries
	// ce- headers.
	if m.get(HeaderPrefix+"specversion") != "" {
		return binding.EncodingBinary
	}
	if ct := m.get(HeaderContentType); format.Lookup(ct) != nil && strings.HasPrefix(ct, "application/cloudevents") {
		return binding.EncodingStructured
	}
	return binding.EncodingUnknown
}

func (m *msgReader) ReadStructured(ctx context.Context, w binding.StructuredWriter) error {
	f := format.Lookup(m.get(HeaderContentType))
	if f == nil || m.ReadEncoding() != binding.EncodingStructured {
		return binding.ErrNotStructured
	}
	return w.SetStructuredEvent(ctx, f, bytes.NewReader(m.data))
}

func (m *msgReader) ReadBinary(ctx context.Context, w binding.BinaryWriter) error {
	sv, err := percentDecode(m.get(HeaderPrefix + "specversion"))
	if err != nil {
		return fmt.Errorf("%w: ce-specversion: %v", ErrMalformedHeader, err)
	}
	version := versions.Version(sv)
	if version == nil {
		return fmt.Errorf("%w: unsupported ce-specversion %q", ErrMalformedHeader, sv)
	}
	if err := w.SetAttribute(version.AttributeFromKind(spec.SpecVersion), sv); err != nil {
		return err
	}
	for k, vs := range m.header {
		lk := strings.ToLower(k)
		if len(vs) == 0 {
			continue
		}
		if lk == HeaderContentType {
			if err := w.SetAttribute(version.AttributeFromKind(spec.DataContentType), vs[0]); err != nil {
				return fmt.Errorf("%w: content-type: %v", ErrMalformedHeader, err)
			}
			continue
		}
		if !strings.HasPrefix(lk, HeaderPrefix) || lk == HeaderPrefix+"specversion" {
			continue
		}
		name := lk[len(HeaderPrefix):]
		if name == "" {
			return fmt.Errorf("%w: empty attribute name", ErrMalformedHeader)
		}
		v, err := percentDecode(vs[0])
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrMalformedHeader, k, err)
		}
		if attr := version.Attribute(HeaderPrefix + name); attr != nil {
			if err := w.SetAttribute(attr, v); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrMalformedHeader, k, err)
			}
		} else if err := w.SetExtension(name, v); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrMalformedHeader, k, err)
		}
	}
	if len(m.data) > 0 {
		if err := w.SetData(bytes.NewReader(m.data)); err != nil {
			return err
		}
	}
	return nil
}

// GetAttribute implements binding.MessageMetadataReader.
func (m *msgReader) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	version := versions.Version(m.get(HeaderPrefix + "specversion"))
	if version == nil {
		return nil, nil
	}
	attr := version.AttributeFromKind(k)
	if attr == nil {
		return nil, nil
	}
	if k == spec.DataContentType {
		if v := m.get(HeaderContentType); v != "" {
			return attr, v
		}
		return attr, nil
	}
	v, err := percentDecode(m.get(HeaderPrefix + attr.Name()))
	if err != nil || v == "" {
		return attr, nil
	}
	return attr, v
}

// GetExtension implements binding.MessageMetadataReader.
func (m *msgReader) GetExtension(name string) any {
	v, err := percentDecode(m.get(HeaderPrefix + strings.ToLower(name)))
	if err != nil || v == "" {
		return nil
	}
	return v
}

func (m *msgReader) Finish(error) error { return nil }

// msgWriter fills a NATS message from binding.Write.
type msgWriter struct{ msg *nats.Msg }

func (w *msgWriter) SetStructuredEvent(_ context.Context, f format.Format, r io.Reader) error {
	w.msg.Header.Set(HeaderContentType, f.MediaType())
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	w.msg.Data = b
	return nil
}

func (w *msgWriter) Start(context.Context) error { return nil }
func (w *msgWriter) End(context.Context) error   { return nil }

func (w *msgWriter) SetData(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	w.msg.Data = b
	return nil
}

func (w *msgWriter) SetAttribute(attr spec.Attribute, value any) error {
	if value == nil {
		return nil
	}
	s, err := types.Format(value)
	if err != nil {
		return err
	}
	if attr.Kind() == spec.DataContentType {
		w.msg.Header.Set(HeaderContentType, s)
		return nil
	}
	w.msg.Header.Set(HeaderPrefix+attr.Name(), percentEncode(s))
	return nil
}

func (w *msgWriter) SetExtension(name string, value any) error {
	if value == nil {
		return nil
	}
	s, err := types.Format(value)
	if err != nil {
		return err
	}
	w.msg.Header.Set(HeaderPrefix+strings.ToLower(name), percentEncode(s))
	return nil
}

// percentEncode escapes, as the HTTP binding does, every byte outside the
// printable ASCII range U+0021-U+007E, plus space, '"' and '%'.
func percentEncode(s string) string {
	need := false
	for i := 0; i < len(s); i++ {
		if mustEscape(s[i]) {
			need = true
			break
		}
	}
	if !need {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if mustEscape(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func mustEscape(c byte) bool { return c <= 0x20 || c >= 0x7F || c == '"' || c == '%' }

// percentDecode reverses percentEncode. It rejects truncated or non-hex
// escapes and results that are not valid UTF-8.
func percentDecode(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("truncated escape at byte %d", i)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("invalid escape %q at byte %d", s[i:i+3], i)
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	out := b.String()
	if !utf8.ValidString(out) {
		return "", errors.New("decoded value is not valid UTF-8")
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/services/internal/apiauth"
	"github.com/heraldhq/herald/services/internal/domain/tenancy"
	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// retryAfter is what callers are told to wait when JetStream is unavailable.
const retryAfter = 2 * time.Second

// Routes registers the collector's HTTP API on mux.
func (s *Service) Routes(mux *http.ServeMux) {
	api := func(h http.HandlerFunc) http.Handler { return s.whenReady(apiauth.Require(s.forTenant(h), s.auth)) }
	mux.Handle("POST /v1/tenants/{tenant}/events", api(s.handleEvents))
	mux.Handle("POST /v1/events", s.whenReady(apiauth.Require(http.HandlerFunc(s.handleKeyEvents), s.auth)))
	mux.Handle("POST /v1/tenants/{tenant}/sources/{adapter}", s.whenReady(s.sourceAuth(s.forTenant(s.handleSource))))
	mux.Handle("POST /v1/tenants/{tenant}/keys", api(s.handleCreateKey))
	mux.Handle("GET /v1/tenants/{tenant}/keys", api(s.handleListKeys))
	mux.Handle("DELETE /v1/tenants/{tenant}/keys/{id}", api(s.handleRevokeKey))
}

// whenReady answers 503 until Run has provisioned the collector.
func (s *Service) whenReady(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.Ready(); err != nil {
			p := problem.New(http.StatusServiceUnavailable, "the collector is starting; retry shortly")
			p.RetryAfter = retryAfter
			problem.Write(w, r, p)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Service) forTenant(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if apiauth.ForTenant(w, r, r.PathValue("tenant")) {
			next(w, r)
		}
	})
}

func unavailable(detail string) *problem.Problem {
	p := problem.New(http.StatusServiceUnavailable, detail)
	p.RetryAfter = retryAfter
	return p
}

// lookupTenant reads a tenant record: 404 when there is none, 503 when the
// bucket cannot be read.
func (s *Service) lookupTenant(ctx context.Context, id string) (tenancy.Tenant, *problem.Problem) {
	notFound := problem.New(http.StatusNotFound, fmt.Sprintf("tenant %q does not exist", id))
	if contract.ValidateToken(id) != nil {
		return tenancy.Tenant{}, notFound
	}
	kvp := s.tenants.Load()
	if kvp == nil {
		return tenancy.Tenant{}, unavailable("the tenants bucket is not available yet")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
	defer cancel()
	entry, err := (*kvp).Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return tenancy.Tenant{}, notFound
	}
	if err != nil {
		s.log.WarnContext(ctx, "read tenant", "tenant", id, "error", err)
		return tenancy.Tenant{}, unavailable("tenant lookup failed: JetStream is unavailable")
	}
	var t tenancy.Tenant
	if err := json.Unmarshal(entry.Value(), &t); err != nil {
		s.log.ErrorContext(ctx, "decode tenant", "tenant", id, "error", err)
		return tenancy.Tenant{}, problem.New(http.StatusInternalServerError, "the tenant record is unreadable")
	}
	t.ID = id
	return t, nil
}

// readBody reads at most MaxBodyBytes; a larger body is a 413.
func (s *Service) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *problem.Problem) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, problem.New(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body exceeds %d bytes", s.cfg.MaxBodyBytes))
	}
	if err != nil {
		return nil, problem.Invalid("could not read the body: " + err.Error())
	}
	// encoding/json would quietly turn invalid bytes into U+FFFD, changing
	// ids and data; JSON must be UTF-8 (RFC 8259), so refuse it instead.
	if strings.Contains(r.Header.Get("Content-Type"), "json") && !utf8.Valid(body) {
		return nil, problem.Invalid("the body is not valid UTF-8", problem.FieldError{Pointer: "", Detail: "JSON text must be UTF-8 (RFC 8259)"})
	}
	return body, nil
}

// response is the 202 body: one result per event, in request order.
type response struct {
	Accepted   int      `json:"accepted"`
	Duplicates int      `json:"duplicates"`
	Rejected   int      `json:"rejected"`
	Results    []result `json:"results"`
}

func (s *Service) handleEvents(w http.ResponseWriter, r *http.Request) {
	t, p := s.lookupTenant(r.Context(), r.PathValue("tenant"))
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	body, p := s.readBody(w, r)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	items, batch, p := decodeHTTP(r.Header, body, s.cfg.MaxBatch)
	if p != nil {
		problem.Write(w, r, p)
		return
	}
	s.ingest(w, r, t, items, batch)
}

// handleKeyEvents is POST /v1/events: the tenant is the one the API key
// belongs to, so a producer needs only its key. The operator token names no
// tenant and is told where to post.
func (s *Service) handleKeyEvents(w http.ResponseWriter, r *http.Request) {
	p, _ := apiauth.FromContext(r.Context())
	if p.Tenant == "" {
		problem.Write(w, r, problem.Invalid("this credential belongs to no tenant: post to /v1/tenants/{tenant}/events",
			problem.FieldError{Pointer: "header:Authorization", Detail: "use a tenant API key, or name the tenant in the path"}))
		return
	}
	r.SetPathValue("tenant", p.Tenant)
	s.handleEvents(w, r)
}

// ingest is the common tail of every HTTP write: rate limit, validate,
// publish, answer. A single event that is rejected is a 400, as is a batch
// whose every event is rejected; otherwise 202 lists each verdict.
func (s *Service) ingest(w http.ResponseWriter, r *http.Request, t tenancy.Tenant, items []item, batch bool) {
	if ok, wait := s.limits.allow(t.ID, t.Settings.IngestRateLimit, len(items)); !ok {
		p := problem.New(http.StatusTooManyRequests, fmt.Sprintf("tenant %s is over its ingest rate limit", t.ID))
		p.RetryAfter = wait
		problem.Write(w, r, p)
		return
	}
	results, err := s.store(r.Context(), t, items)
	if err != nil {
		s.log.WarnContext(r.Context(), "publish failed", "tenant", t.ID, "error", err)
		problem.Write(w, r, unavailable("the event store did not acknowledge the events; nothing is guaranteed stored, retry the request"))
		return
	}
	resp := response{Results: results}
	var errs []problem.FieldError
	for _, res := range results {
		switch res.Status {
		case statusAccepted:
			resp.Accepted++
		case statusDuplicate:
			resp.Duplicates++
		default:
			resp.Rejected++
			errs = append(errs, problem.FieldError{Pointer: res.Pointer, Detail: res.Reason})
		}
	}
	if resp.Rejected == len(results) {
		detail := "the event is invalid"
		if batch {
			detail = "every event of the batch is invalid"
		}
		problem.Write(w, r, problem.Invalid(detail, errs...))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(resp)
}

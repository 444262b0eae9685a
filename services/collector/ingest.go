package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/heraldhq/herald/services/internal/problem"
	"github.com/heraldhq/herald/services/internal/transport/cenats"
	"github.com/heraldhq/herald/services/internal/transport/contract"
)

// IngestReply is the answer to a request on herald.ingest.<tenant>: Status
// is the HTTP status the same event would get (202, 400, 404, 429, 503),
// with the event's Result when it was judged, or a Problem otherwise.
type IngestReply struct {
	Status  int              `json:"status"`
	Result  *result          `json:"result,omitempty"`
	Problem *problem.Problem `json:"problem,omitempty"`
}

// ingestConcurrency bounds requests handled at once; the rest wait in the
// subscription's pending buffer.
const ingestConcurrency = 64

// serveIngest answers CloudEvents (binary or structured NATS messages, or a
// bare JSON CloudEvent) on herald.ingest.* in queue group "collector". A
// reply is sent only after the JetStream ack. stop unsubscribes and waits
// for requests in flight.
func (s *Service) serveIngest(ctx context.Context) (stop func(), err error) {
	sem := make(chan struct{}, ingestConcurrency)
	var wg sync.WaitGroup
	// In-flight requests finish even when ctx ends, bounded by PublishTimeout.
	hctx := context.WithoutCancel(ctx)
	sub, err := s.nc.QueueSubscribe(contract.IngestWildcard, "collector", func(m *nats.Msg) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			reply := s.handleIngest(hctx, m)
			b, _ := json.Marshal(reply)
			if err := m.Respond(b); err != nil {
				s.log.WarnContext(hctx, "ingest reply", "subject", m.Subject, "error", err)
			}
		}()
	})
	if err != nil {
		return nil, fmt.Errorf("collector: subscribe %s: %w", contract.IngestWildcard, err)
	}
	return func() {
		_ = sub.Unsubscribe()
		wg.Wait()
	}, nil
}

func ingestProblem(p *problem.Problem) IngestReply { return IngestReply{Status: p.Status, Problem: p} }

func (s *Service) handleIngest(ctx context.Context, m *nats.Msg) IngestReply {
	// contract.TenantFromSubject reads stream subjects; ingest subjects
	// carry the tenant in their last token.
	tenant := strings.TrimPrefix(m.Subject, contract.IngestSubject(""))
	t, p := s.lookupTenant(ctx, tenant)
	if p != nil {
		return ingestProblem(p)
	}
	if int64(len(m.Data)) > s.cfg.MaxBodyBytes {
		return ingestProblem(problem.New(http.StatusRequestEntityTooLarge, fmt.Sprintf("the message exceeds %d bytes", s.cfg.MaxBodyBytes)))
	}
	e, err := cenats.Decode(m.Header, m.Data)
	binary := err == nil && m.Header.Get(cenats.HeaderPrefix+"specversion") != ""
	// As on the HTTP path: encoding/json would quietly turn invalid bytes
	// into U+FFFD, changing ids and data, so JSON that is not UTF-8 is
	// refused (RFC 8259). A binary-mode message's data is JSON only when its
	// content type says so.
	if (!binary || isJSON(e.DataContentType())) && !utf8.Valid(m.Data) {
		return ingestProblem(problem.Invalid("the message is not valid UTF-8", problem.FieldError{Pointer: "", Detail: "JSON text must be UTF-8 (RFC 8259)"}))
	}
	if errors.Is(err, cenats.ErrNotCloudEvent) {
		e = event.Event{}
		err = json.Unmarshal(m.Data, &e)
	}
	if err != nil {
		return ingestProblem(problem.Invalid("the message is not a CloudEvent", problem.FieldError{Pointer: "", Detail: err.Error()}))
	}
	if ok, wait := s.limits.allow(t.ID, t.Settings.IngestRateLimit, 1); !ok {
		p := problem.New(http.StatusTooManyRequests, "tenant "+t.ID+" is over its ingest rate limit")
		p.RetryAfter = wait
		return ingestProblem(p)
	}
	results, err := s.store(ctx, t, []item{{ev: e}})
	if err != nil {
		s.log.WarnContext(ctx, "publish failed", "tenant", t.ID, "error", err)
		return ingestProblem(unavailable("the event store did not acknowledge the event; retry"))
	}
	r := results[0]
	if r.Status == statusRejected {
		return IngestReply{Status: http.StatusBadRequest, Result: &r, Problem: problem.Invalid("the event is invalid", problem.FieldError{Pointer: r.Pointer, Detail: r.Reason})}
	}
	return IngestReply{Status: http.StatusAccepted, Result: &r}
}

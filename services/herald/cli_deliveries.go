package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/heraldhq/herald/services/audit"
	"github.com/heraldhq/herald/services/internal/domain/auditchain"
	"github.com/heraldhq/herald/services/internal/domain/payload"
)

type deliveryPage = audit.DeliveryPage

// printDeliveries shows a page of deliveries: JSON as the server sent it,
// or one line per pair, with every attempt below it when detail is set.
func (x *invocation) printDeliveries(p deliveryPage, detail bool) {
	if x.c.output == "json" {
		enc := json.NewEncoder(x.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(p)
		return
	}
	for _, d := range p.Items {
		line := fmt.Sprintf("%s  %-16s sub=%s  %s  notification=%s  attempts=%d", d.Pair, d.State, d.SubscriptionID,
			d.NotificationType, d.NotificationID, len(d.Attempts))
		if n := len(d.Attempts); n > 0 && !detail {
			line += "  last: " + attemptText(d.Attempts[n-1].StatusCode, d.Attempts[n-1].LatencyMs, d.Attempts[n-1].ErrorClass, d.Attempts[n-1].Error)
		}
		fmt.Fprintln(x.stdout, line)
		if !detail {
			continue
		}
		for _, a := range d.Attempts {
			fmt.Fprintf(x.stdout, "  #%d %s %-16s %s\n", a.Attempt, a.At.UTC().Format(time.RFC3339), a.Outcome,
				attemptText(a.StatusCode, a.LatencyMs, a.ErrorClass, a.Error))
			if a.Response != "" && a.Outcome != payload.OutcomeDelivered {
				fmt.Fprintf(x.stdout, "     answer: %q\n", truncate(a.Response, 200))
			}
		}
		fmt.Fprintf(x.stdout, "  audit: %s\n", d.Links.Audit)
	}
	if p.NextCursor != "" {
		fmt.Fprintf(x.stdout, "(more: --cursor %s)\n", p.NextCursor)
	}
}

// attemptText is an attempt's answer: status, latency, and for a failure
// its error class and message.
func attemptText(status int, latencyMs float64, class, msg string) string {
	var parts []string
	if status != 0 {
		parts = append(parts, fmt.Sprint(status))
	}
	if status != 0 || latencyMs > 0 {
		parts = append(parts, fmt.Sprintf("%.0fms", latencyMs))
	}
	if class != "" || msg != "" {
		parts = append(parts, strings.TrimPrefix(class+": "+msg, ": "))
	}
	return strings.Join(parts, " ")
}

// tailQuery is what herald tail follows.
type tailQuery struct {
	tenant, subscription, evType, outcome string
	since                                 time.Time // zero: from now on
}

// tail follows a tenant's delivery attempts in the audit trail, printing
// each once. Without since it starts after the newest attempt recorded
// now, by the server's clock.
func tail(ctx context.Context, c *session, q tailQuery, stdout io.Writer) error {
	from := q.since
	seen := map[string]bool{} // attempts recorded at exactly from
	if from.IsZero() {
		var newest struct {
			Items []auditchain.Record `json:"items"`
		}
		if err := c.api.Do(ctx, "GET", "/v1/tenants/"+q.tenant+"/audit?kind=attempt&order=desc&limit=1", "", nil, &newest); err != nil {
			return err
		}
		if len(newest.Items) > 0 {
			from = newest.Items[0].At
			seen[newest.Items[0].ID] = true
		}
	}
	color := isTerminal(stdout) && c.output == "text"
	for {
		v := url.Values{"kind": {"attempt"}, "order": {"asc"}, "limit": {"500"}}
		setIf(v, "subscription", q.subscription)
		setIf(v, "outcome", q.outcome)
		if !from.IsZero() {
			v.Set("since", from.UTC().Format(time.RFC3339Nano))
		}
		for cursor := ""; ; {
			if cursor != "" {
				v.Set("cursor", cursor)
			}
			var page struct {
				Items      []auditchain.Record `json:"items"`
				NextCursor string              `json:"next_cursor"`
			}
			if err := c.api.Do(ctx, "GET", "/v1/tenants/"+q.tenant+"/audit?"+v.Encode(), "", nil, &page); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			for _, r := range page.Items {
				if seen[r.ID] {
					continue
				}
				if r.At.After(from) {
					from, seen = r.At, map[string]bool{}
				}
				seen[r.ID] = true
				if q.evType == "" || r.NotificationType == q.evType {
					printAttempt(stdout, c.output, color, r)
				}
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func printAttempt(w io.Writer, output string, color bool, r auditchain.Record) {
	if output == "json" {
		_ = json.NewEncoder(w).Encode(r)
		return
	}
	line := fmt.Sprintf("%s %-16s #%d sub=%s  %s  notification=%s  %s", r.At.Local().Format("15:04:05.000"), r.Outcome, r.Attempt,
		r.SubscriptionID, r.NotificationType, r.NotificationID, attemptText(r.StatusCode, r.LatencyMs, r.ErrorClass, r.Error))
	if color {
		switch r.Outcome {
		case payload.OutcomeDelivered:
			line = "\x1b[32m" + line + "\x1b[0m"
		case payload.OutcomeFailed, payload.OutcomeDeadLettered:
			line = "\x1b[31m" + line + "\x1b[0m"
		default:
			line = "\x1b[33m" + line + "\x1b[0m"
		}
	}
	fmt.Fprintln(w, line)
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

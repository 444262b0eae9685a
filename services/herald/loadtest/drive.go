package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/pkg/client"
)

// auditDelivered pages through the tenant's delivered attempts in the
// audit trail until it holds expected pairs, and counts the pairs and the
// pairs recorded delivered more than once, by webhook-id. The audit
// consumes ATTEMPTS asynchronously and, with fsync always, behind the
// dispatcher: it is waited for while it makes progress, and given up on
// after 30 s without any.
func auditDelivered(ctx context.Context, c *client.Client, tenant string, expected int) (pairs, doubles int, err error) {
	const stall = 30 * time.Second
	deadline, best := time.Now().Add(stall), -1
	for {
		recorded := map[string]int{}
		cursor := ""
		for {
			var page struct {
				Items []struct {
					WebhookID string `json:"webhookId"`
				} `json:"items"`
				NextCursor string `json:"next_cursor"`
			}
			path := "/v1/tenants/" + tenant + "/audit?kind=attempt&outcome=delivered&order=asc&limit=500"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			if err := c.Do(ctx, "GET", path, "", nil, &page); err != nil {
				return 0, 0, fmt.Errorf("audit of %s: %w", tenant, err)
			}
			for _, it := range page.Items {
				recorded[it.WebhookID]++
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		doubles = 0
		for _, n := range recorded {
			if n > 1 {
				doubles++
			}
		}
		if len(recorded) > best {
			best, deadline = len(recorded), time.Now().Add(stall)
		}
		if len(recorded) >= expected || time.Now().After(deadline) {
			return len(recorded), doubles, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func waitReady(ctx context.Context, c *client.Client) error {
	for {
		if c.Ready(ctx) == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("herald not ready")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func createTenant(ctx context.Context, c *client.Client, id string) error {
	body, _ := json.Marshal(map[string]any{"id": id, "name": id, "kind": "account",
		"settings": map[string]any{"subscription_quota": 1000, "ingest_rate_limit": 1e6}})
	return c.Do(ctx, "POST", "/v1/tenants", "application/json", body, nil)
}

var eventSeq atomic.Int64

func event(sent time.Time) map[string]any {
	id := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), eventSeq.Add(1))
	return map[string]any{"specversion": "1.0", "id": id, "source": "urn:herald:bench", "type": "bench.tick",
		"datacontenttype": "application/json", "data": map[string]any{"sent_unix_nano": sent.UnixNano(), "pad": strings.Repeat("x", 200)}}
}

// ingest posts count events in requests of batch events with conc workers.
func ingest(ctx context.Context, c *client.Client, tenant, label string, count, batch, conc int) (RateResult, error) {
	requests := (count + batch - 1) / batch
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= requests || ctx.Err() != nil {
					return
				}
				n := min(batch, count-i*batch)
				var body []byte
				ct := "application/cloudevents+json"
				if batch == 1 {
					body, _ = json.Marshal(event(time.Now()))
				} else {
					evs := make([]map[string]any, n)
					for j := range evs {
						evs[j] = event(time.Now())
					}
					body, _ = json.Marshal(evs)
					ct = "application/cloudevents-batch+json"
				}
				if err := postRetrying(ctx, c, "/v1/tenants/"+tenant+"/events", ct, body); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s ingest: %w", label, err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	return RateResult{Count: count, Seconds: secs, PerSecond: float64(count) / secs}, firstErr
}

// postRetrying posts once, retrying only on 429/503 with Retry-After, as a
// well-behaved producer would.
func postRetrying(ctx context.Context, c *client.Client, path, ct string, body []byte) error {
	for attempt := 0; attempt < 20; attempt++ {
		err := c.Do(ctx, "POST", path, ct, body, nil)
		var ae *client.Error
		if errors.As(err, &ae) && (ae.Status == 429 || ae.Status == 503) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		return err
	}
	return errors.New("still throttled after 20 tries")
}

// subscribe gives tenant n subscriptions to url for every bench event.
func subscribe(ctx context.Context, c *client.Client, tenant, url string, n int) error {
	for i := 0; i < n; i++ {
		body, _ := json.Marshal(map[string]any{"url": url, "events": []string{"bench.*"}})
		if err := c.Do(ctx, "POST", "/v1/tenants/"+tenant+"/subscriptions", "application/json", body, nil); err != nil {
			return fmt.Errorf("subscribe %s %d/%d: %w", tenant, i+1, n, err)
		}
	}
	return nil
}

// paced posts total single events at rate per second.
func paced(ctx context.Context, c *client.Client, tenant string, total, rate int) error {
	interval := time.Second / time.Duration(rate)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			body, _ := json.Marshal(event(time.Now()))
			if err := postRetrying(ctx, c, "/v1/tenants/"+tenant+"/events", "application/cloudevents+json", body); err != nil {
				once.Do(func() { firstErr = err })
			}
		}()
	}
	wg.Wait()
	return firstErr
}

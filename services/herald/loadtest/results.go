package loadtest

import "fmt"

// Results is one load run, as printed and written to bench.json.
type Results struct {
	Machine             string        `json:"machine"`
	SyncAlways          bool          `json:"sync_always"`
	Events              int           `json:"events"`
	Concurrency         int           `json:"concurrency"`
	EndpointConcurrency int           `json:"dispatcher_endpoint_concurrency"`
	IngestSingle        RateResult    `json:"ingest_single"`
	IngestBatch100      RateResult    `json:"ingest_batch100"`
	FanOut              []PhaseResult `json:"fan_out"`
	FixedRate           []PhaseResult `json:"fixed_rate"`
	// Isolation is nine healthy subscriptions alone, then beside a hung
	// tenth; IsolationKept is the second's deliveries/s over the first's.
	Isolation                   []PhaseResult `json:"isolation,omitempty"`
	IsolationKept               float64       `json:"isolation_kept,omitempty"`
	CPUSecondsPer1000Deliveries float64       `json:"cpu_seconds_per_1000_deliveries"`
	PeakRSSMiB                  float64       `json:"peak_rss_mib"`
}

// RateResult is a count of requests or events over the seconds they took.
type RateResult struct {
	Count     int     `json:"count"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
}

// PhaseResult is one delivery phase: what the receiver got, how fast and
// how late, and what the audit trail recorded.
type PhaseResult struct {
	Subscriptions       int        `json:"subscriptions"`
	Rate                int        `json:"events_per_second,omitempty"`
	HungEndpoint        bool       `json:"hung_endpoint,omitempty"`
	Events              int        `json:"events"`
	Expected            int        `json:"expected_pairs"`
	Received            int        `json:"received"`
	Lost                int        `json:"lost"`
	Duplicates          int        `json:"duplicates"`
	DeliveriesPerSecond float64    `json:"deliveries_per_second"`
	P50ms               float64    `json:"p50_ms"`
	P99ms               float64    `json:"p99_ms"`
	Maxms               float64    `json:"max_ms"`
	Bare                RateResult `json:"bare_client"`
	RatioToBare         float64    `json:"ratio_to_bare"`
	// Audited pairs are those the audit trail records delivered;
	// DoubleRecorded are those it records delivered more than once.
	Audited        int `json:"audited_pairs"`
	DoubleRecorded int `json:"double_recorded_pairs"`

	tenant string
}

// phases lists every delivery phase, in run order, for editing in place.
func (r *Results) phases() []*PhaseResult {
	var out []*PhaseResult
	for _, list := range [][]PhaseResult{r.FanOut, r.FixedRate, r.Isolation} {
		for i := range list {
			out = append(out, &list[i])
		}
	}
	return out
}

// Check fails when a phase lost a delivery, delivered a pair twice, or
// the audit trail does not record each pair delivered exactly once.
func (r *Results) Check() error {
	for _, f := range r.phases() {
		if f.Lost > 0 || f.Duplicates > 0 || f.Audited != f.Expected || f.DoubleRecorded > 0 {
			return fmt.Errorf("%d subscriptions: %d lost, %d duplicate deliveries, %d of %d pairs in the audit trail, %d recorded delivered twice",
				f.Subscriptions, f.Lost, f.Duplicates, f.Audited, f.Expected, f.DoubleRecorded)
		}
	}
	return nil
}

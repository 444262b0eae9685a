// Package auditchain is the pure core of Herald's audit trail: the record
// that the audit service stores on the AUDIT stream (one hash chain per
// tenant), its canonical hashing, and the Verify walk that finds the first
// broken link. It imports nothing from NATS, so the CLI can verify a trail
// it has exported.
//
// Hash = hex(sha256("herald-audit-v1\n" + canonical JSON of the record
// without "hash")). The canonical JSON is the record re-encoded with sorted
// keys and numbers kept verbatim, so verification works on the stored bytes
// and does not depend on this package's struct (a record written by a newer
// version with extra fields still verifies).
//
// Retention: old records expire from the stream. Verification starts at the
// first remaining record and trusts its prevHash as the anchor; every later
// link is checked. A chain whose first record has seq 1 must have an empty
// prevHash (genesis). When the caller also has the retention checkpoint (the
// seq and hash of the last expired record, which the audit service keeps
// outside the stream), Verifier.Checkpoint makes the anchor checked too, so
// deleting the oldest remaining records is told apart from expiry.
package auditchain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Kinds of record.
const (
	KindEvent        = "event"
	KindNotification = "notification"
	KindAttempt      = "attempt"
	KindChange       = "change"
	// KindDeadLetter records a poison message that a consumer set aside.
	KindDeadLetter = "dead_letter"
)

// TypeRecord is the CloudEvent type of an AUDIT message.
const TypeRecord = "herald.audit"

// Record is one link of a tenant's chain. It holds ids, types, hashes and
// the delivery facts the query API answers with; never a payload, secret,
// signature or credential-bearing URL.
type Record struct {
	Tenant       string    `json:"tenant"`
	Seq          uint64    `json:"seq"`
	PrevHash     string    `json:"prevHash"`
	Hash         string    `json:"hash,omitempty"`
	Kind         string    `json:"kind"`
	SourceStream string    `json:"sourceStream"`
	SourceSeq    uint64    `json:"sourceSeq"`
	At           time.Time `json:"at"`

	// CloudEvent identity of the input (events, notifications, attempts, changes).
	ID         string `json:"id"`
	Type       string `json:"type"`
	Source     string `json:"source,omitempty"`
	Subject    string `json:"subject,omitempty"`
	Time       string `json:"time,omitempty"`
	DataSHA256 string `json:"dataSha256,omitempty"`
	// EventIDs are the events that caused a notification or attempt.
	EventIDs []string `json:"eventIds,omitempty"`

	// Attempt facts.
	NotificationID   string  `json:"notificationId,omitempty"`
	NotificationType string  `json:"notificationType,omitempty"`
	SubscriptionID   string  `json:"subscriptionId,omitempty"`
	AttemptID        string  `json:"attemptId,omitempty"`
	WebhookID        string  `json:"webhookId,omitempty"`
	URL              string  `json:"url,omitempty"`
	Attempt          int     `json:"attempt,omitempty"`
	Outcome          string  `json:"outcome,omitempty"`
	StatusCode       int     `json:"statusCode,omitempty"`
	ErrorClass       string  `json:"errorClass,omitempty"`
	Error            string  `json:"error,omitempty"`
	LatencyMs        float64 `json:"latencyMs,omitempty"`
	ResponseSnippet  string  `json:"responseSnippet,omitempty"`
	Replay           bool    `json:"replay,omitempty"`
	ReplayOf         string  `json:"replayOf,omitempty"`

	// Change facts.
	Entity        string   `json:"entity,omitempty"`
	EntityID      string   `json:"entityId,omitempty"`
	Action        string   `json:"action,omitempty"`
	Actor         string   `json:"actor,omitempty"`
	ChangedFields []string `json:"changedFields,omitempty"`

	// Dead-letter facts: which consumer set a message aside, and where the
	// original was (the reason is in Error).
	Consumer     string `json:"consumer,omitempty"`
	OriginStream string `json:"originStream,omitempty"`
	OriginSeq    uint64 `json:"originSeq,omitempty"`
}

const domain = "herald-audit-v1\n"

// Seal sets r.Hash from the rest of the record and returns its encoding.
func Seal(r *Record) ([]byte, error) {
	r.Hash = ""
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	h, err := Hash(b)
	if err != nil {
		return nil, err
	}
	r.Hash = h
	return json.Marshal(r)
}

// Hash returns the hash of a stored record's bytes, ignoring its "hash"
// member.
func Hash(raw []byte) (string, error) {
	c, err := Canonical(raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append([]byte(domain), c...))
	return hex.EncodeToString(sum[:]), nil
}

// Canonical re-encodes a JSON object with sorted keys, numbers verbatim and
// the "hash" member removed.
func Canonical(raw []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("auditchain: record is not a JSON object: %w", err)
	}
	delete(m, "hash")
	return json.Marshal(m) // encoding/json sorts map keys
}

// Break is the first broken link found by a Verifier.
type Break struct {
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit chain broken at seq %d: %s", b.Seq, b.Reason)
}

// ErrBroken is wrapped by every *Break.
var ErrBroken = errors.New("audit chain broken")

// Is lets errors.Is(err, ErrBroken) match a *Break.
func (b *Break) Is(target error) bool { return target == ErrBroken }

// Result is the outcome of a walk.
type Result struct {
	OK       bool   `json:"ok"`
	Records  int    `json:"records"`
	FirstSeq uint64 `json:"firstSeq,omitempty"`
	LastSeq  uint64 `json:"lastSeq,omitempty"`
	LastHash string `json:"lastHash,omitempty"`
	// Anchor is the prevHash of the first remaining record, trusted when
	// older records have expired; empty when the walk starts at genesis.
	Anchor string `json:"anchor,omitempty"`
	// AnchorCheckpoint is true when the anchor matched a retention
	// checkpoint (the last expired record's seq and hash, kept outside the
	// stream), so that deleting the oldest remaining records is detected.
	AnchorCheckpoint bool   `json:"anchorCheckpoint,omitempty"`
	Broken           *Break `json:"broken,omitempty"`
}

// Verifier walks one tenant's records in stream order. It is not safe for
// concurrent use.
type Verifier struct {
	Tenant string
	res    Result
	cpSet  bool
	cpSeq  uint64
	cpHash string
}

// Checkpoint gives the seq and hash of the last record removed by
// retention. The first record walked must then follow it: seq+1 with that
// prevHash. Seq 0 says nothing was ever removed, so the walk must start at
// genesis. Without a call, any first record is trusted as the anchor. Call
// it before the first Add.
func (v *Verifier) Checkpoint(seq uint64, hash string) { v.cpSet, v.cpSeq, v.cpHash = true, seq, hash }

// Add checks the next stored record. It returns a *Break (and keeps it in
// the Result) at the first broken link; later calls return the same break.
func (v *Verifier) Add(raw []byte) error {
	if v.res.Broken != nil {
		return v.res.Broken
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return v.fail(v.res.LastSeq+1, "undecodable record: "+err.Error())
	}
	switch {
	case v.Tenant != "" && r.Tenant != v.Tenant:
		return v.fail(r.Seq, fmt.Sprintf("record of tenant %q in chain of %q", r.Tenant, v.Tenant))
	case v.res.Records == 0 && r.Seq == 1 && r.PrevHash != "":
		return v.fail(r.Seq, "genesis record has a prevHash")
	case v.res.Records == 0 && r.Seq == 0:
		return v.fail(0, "record has no seq")
	case v.res.Records == 0 && v.cpSet && r.Seq > v.cpSeq+1:
		return v.fail(v.cpSeq+1, fmt.Sprintf("record missing after the retention checkpoint (first stored record has seq %d)", r.Seq))
	case v.res.Records == 0 && v.cpSeq > 0 && r.Seq == v.cpSeq+1 && r.PrevHash != v.cpHash:
		return v.fail(r.Seq, "prevHash does not match the retention checkpoint")
	case v.res.Records > 0 && r.Seq != v.res.LastSeq+1:
		if r.Seq > v.res.LastSeq+1 {
			return v.fail(v.res.LastSeq+1, fmt.Sprintf("record missing (next stored record has seq %d)", r.Seq))
		}
		return v.fail(r.Seq, fmt.Sprintf("seq %d follows %d", r.Seq, v.res.LastSeq))
	case v.res.Records > 0 && r.PrevHash != v.res.LastHash:
		return v.fail(r.Seq, "prevHash does not match the previous record's hash")
	}
	h, err := Hash(raw)
	if err != nil {
		return v.fail(r.Seq, err.Error())
	}
	if h != r.Hash {
		return v.fail(r.Seq, "hash does not match the record's content")
	}
	if v.res.Records == 0 {
		v.res.FirstSeq, v.res.Anchor = r.Seq, r.PrevHash
		v.res.AnchorCheckpoint = v.cpSet && v.cpSeq > 0 && r.Seq == v.cpSeq+1
	}
	v.res.Records++
	v.res.LastSeq, v.res.LastHash = r.Seq, r.Hash
	return nil
}

// ExpectHead checks that the walk ended at the recorded head, so that
// records cut off the end of the chain are noticed.
func (v *Verifier) ExpectHead(seq uint64, hash string) error {
	if v.res.Broken != nil {
		return v.res.Broken
	}
	if seq > v.res.LastSeq {
		return v.fail(v.res.LastSeq+1, fmt.Sprintf("records missing: head is seq %d", seq))
	}
	if seq == v.res.LastSeq && hash != "" && hash != v.res.LastHash {
		return v.fail(seq, "last record's hash differs from the recorded head")
	}
	return nil
}

func (v *Verifier) fail(seq uint64, reason string) error {
	v.res.Broken = &Break{Seq: seq, Reason: reason}
	return v.res.Broken
}

// Result reports the walk so far.
func (v *Verifier) Result() Result {
	r := v.res
	r.OK = r.Broken == nil
	return r
}

// Verify walks records (stored bytes, in order) of one tenant.
func Verify(tenant string, records [][]byte) Result {
	v := Verifier{Tenant: tenant}
	for _, raw := range records {
		if v.Add(raw) != nil {
			break
		}
	}
	return v.Result()
}

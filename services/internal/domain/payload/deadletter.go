package payload

import "time"

// TypeDeadLetter is the CloudEvent type of a DEADLETTERS record: a message
// that a consumer could not handle at all (its handler panicked), copied
// aside before the original was terminated.
const TypeDeadLetter = "herald.deadletter"

// DeadLetter describes a poison message and carries it, so that an
// operator can inspect it and, once the bug is fixed, publish it again.
// Bus messages hold no secrets (they are sealed before they reach the
// bus), so the copy holds none either.
type DeadLetter struct {
	Consumer   string    `json:"consumer"`
	Stream     string    `json:"stream"`
	StreamSeq  uint64    `json:"streamSeq"`
	Subject    string    `json:"subject"`
	Deliveries uint64    `json:"deliveries"`
	MessageID  string    `json:"messageId,omitempty"`
	Type       string    `json:"messageType,omitempty"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
	// Headers and Data are the original message's, verbatim (Data is
	// base64 in JSON).
	Headers map[string][]string `json:"headers,omitempty"`
	Data    []byte              `json:"data,omitempty"`
}

// Package alertfsm is the engine's pure state machines: alert lifecycles
// (opened, deteriorated, improved, resolved) and operation lifecycles
// (requested, succeeded, failed, timed_out). It does no I/O: the engine
// loads a record from KV, applies one input here, and writes the record back
// with compare-and-set. Every output is a function of the record and the
// input only (no clock, no randomness), so two engine instances that apply
// the same input to the same revision produce byte-identical notifications.
package alertfsm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"
)

// Notification is one notification the engine must publish. ID is
// deterministic (derived from the input event id and the transition), so it
// doubles as Nats-Msg-Id and a republish is dropped by the stream's
// duplicate window.
type Notification struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data"`
}

// maxRemembered bounds the processed-id and event-id lists of a record.
const maxRemembered = 100

// NotificationID derives a notification id from its parts.
func NotificationID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// remember appends id to list, keeping the last maxRemembered entries.
func remember(list []string, id string) []string {
	list = append(list, id)
	if len(list) > maxRemembered {
		list = slices.Clone(list[len(list)-maxRemembered:])
	}
	return list
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // payload types are plain structs; cannot fail
	}
	return b
}

package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KeyEntry is a live key of a KV bucket with its value and revision.
type KeyEntry struct {
	Key      string
	Value    []byte
	Revision uint64
}

// ListKeys returns the live keys of a KV bucket that match filter ("" for
// all), sorted; see ListEntries.
func ListKeys(ctx context.Context, js jetstream.JetStream, bucket, filter string) ([]string, error) {
	entries, err := ListEntries(ctx, js, bucket, filter)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	return keys, nil
}

// ListEntries returns the live entries of a KV bucket whose keys match
// filter ("" for all), sorted by key.
//
// jetstream's KeyValue.ListKeys and ListKeysFiltered end their listing on
// a count of pending messages; with keys being created and deleted
// meanwhile they can end before keys that stood the whole time were
// delivered (TestListKeysUnderChurn). This listing asks the stream for the
// last message of every key in one direct get ("multi_last"), which the
// server answers from one snapshot, isolated from writes: every key
// written before the call and not deleted before it is listed, however the
// bucket churns, and its value comes with it. The server answers at most
// maxSnapshotKeys keys so; a larger listing falls back to a scan that may
// miss a key rewritten while it runs.
func ListEntries(ctx context.Context, js jetstream.JetStream, bucket, filter string) ([]KeyEntry, error) {
	prefix := "$KV." + bucket + "."
	subject := prefix + ">"
	if filter != "" {
		subject = prefix + filter
	}
	last, err := snapshotEntries(ctx, js, "KV_"+bucket, subject)
	if errors.Is(err, errTooManyKeys) {
		last, err = scanEntries(ctx, js, "KV_"+bucket, subject)
	}
	if err != nil {
		return nil, fmt.Errorf("list keys of %s: %w", bucket, err)
	}
	entries := make([]KeyEntry, 0, len(last))
	for subj, e := range last {
		if e != nil {
			e.Key = strings.TrimPrefix(subj, prefix)
			entries = append(entries, *e)
		}
	}
	slices.SortFunc(entries, func(a, b KeyEntry) int { return strings.Compare(a.Key, b.Key) })
	return entries, nil
}

// maxSnapshotKeys is the server's limit on one multi_last answer.
const maxSnapshotKeys = 1024

var errTooManyKeys = errors.New("more keys than one snapshot answers")

// lastEntries maps each subject of a KV stream to its last message as an
// entry, or to nil when that message removes the key.
type lastEntries map[string]*KeyEntry

func (l lastEntries) put(subject string, h nats.Header, data []byte, seq uint64) {
	if isKVRemoval(h) {
		l[subject] = nil
		return
	}
	l[subject] = &KeyEntry{Value: data, Revision: seq}
}

// snapshotEntries takes the last message of each subject under subject
// from one isolated multi_last direct get.
func snapshotEntries(ctx context.Context, js jetstream.JetStream, stream, subject string) (lastEntries, error) {
	nc := js.Conn()
	inbox := nc.NewInbox()
	msgs := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	req, _ := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{[]string{subject}})
	if err := nc.PublishRequest(apiPrefix(js)+"DIRECT.GET."+stream, inbox, req); err != nil {
		return nil, err
	}
	last := lastEntries{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case m := <-msgs:
			switch status := m.Header.Get("Status"); status {
			case "":
				seq, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
				last.put(m.Header.Get(jetstream.SubjectHeader), m.Header, m.Data, seq)
			case "204", "404": // the end of the answer; nothing under subject
				return last, nil
			case "413":
				return nil, errTooManyKeys
			case "503":
				return nil, nats.ErrNoResponders
			default:
				return nil, fmt.Errorf("direct get: %s %s", status, m.Header.Get("Description"))
			}
		}
	}
}

// apiPrefix is the JetStream API prefix js sends requests under.
func apiPrefix(js jetstream.JetStream) string {
	o := js.Options()
	switch {
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	}
	return jetstream.DefaultAPIPrefix
}

// scanEntries takes the last message of each subject under subject with an
// ordered consumer, until it has passed the last message stored when it
// began. A key
// whose message is replaced while the scan runs can be missed: the old
// message is gone before the scan reaches it, the new one lies beyond
// where the scan ends.
func scanEntries(ctx context.Context, js jetstream.JetStream, stream, subject string) (lastEntries, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	end, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return lastEntries{}, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return nil, err
	}
	it, err := c.Messages()
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	last := lastEntries{}
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, err
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		last.put(m.Subject(), m.Headers(), m.Data(), md.Sequence.Stream)
		if md.Sequence.Stream >= end.Sequence {
			return last, nil
		}
	}
}

// isKVRemoval reports whether a KV message's headers mark a deletion or a
// purge (by a client, or by the server's marker on MaxAge and purge).
func isKVRemoval(h nats.Header) bool {
	switch h.Get("KV-Operation") {
	case "DEL", "PURGE":
		return true
	}
	return h.Get(jetstream.MarkerReasonHeader) != ""
}

package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ListKeys returns the live keys of a KV bucket that match filter ("" for
// all), sorted.
//
// jetstream's KeyValue.ListKeys and ListKeysFiltered end their listing on
// a count of pending messages; with keys being created and deleted
// meanwhile they can end before keys that stood the whole time were
// delivered (TestListKeysUnderChurn). This listing asks the stream for the
// last message of every key in one direct get ("multi_last"), which the
// server answers from one snapshot, isolated from writes: every key
// written before the call and not deleted before it is listed, however the
// bucket churns. The server answers at most maxSnapshotKeys keys so; a
// larger listing falls back to a scan that may miss a key rewritten while
// it runs.
func ListKeys(ctx context.Context, js jetstream.JetStream, bucket, filter string) ([]string, error) {
	prefix := "$KV." + bucket + "."
	subject := prefix + ">"
	if filter != "" {
		subject = prefix + filter
	}
	live, err := snapshotKeys(ctx, js, "KV_"+bucket, subject)
	if errors.Is(err, errTooManyKeys) {
		live, err = scanKeys(ctx, js, "KV_"+bucket, subject)
	}
	if err != nil {
		return nil, fmt.Errorf("list keys of %s: %w", bucket, err)
	}
	keys := make([]string, 0, len(live))
	for subj, ok := range live {
		if ok {
			keys = append(keys, strings.TrimPrefix(subj, prefix))
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// maxSnapshotKeys is the server's limit on one multi_last answer.
const maxSnapshotKeys = 1024

var errTooManyKeys = errors.New("more keys than one snapshot answers")

// snapshotKeys maps each subject under subject to whether its last message
// is a live value, from one isolated multi_last direct get.
func snapshotKeys(ctx context.Context, js jetstream.JetStream, stream, subject string) (map[string]bool, error) {
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
	live := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case m := <-msgs:
			switch status := m.Header.Get("Status"); status {
			case "":
				live[m.Header.Get(jetstream.SubjectHeader)] = !isKVRemoval(m.Header)
			case "204": // end of the answer
				return live, nil
			case "404": // nothing under subject
				return live, nil
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

// scanKeys maps each subject under subject to whether its last message is
// a live value, with an ordered consumer that takes the last message per
// subject until it has passed the last message stored when it began. A key
// whose message is replaced while the scan runs can be missed: the old
// message is gone before the scan reaches it, the new one lies beyond
// where the scan ends.
func scanKeys(ctx context.Context, js jetstream.JetStream, stream, subject string) (map[string]bool, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	last, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly:    true,
	})
	if err != nil {
		return nil, err
	}
	it, err := c.Messages()
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	live := map[string]bool{}
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, err
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, err
		}
		live[m.Subject()] = !isKVRemoval(m.Headers())
		if md.Sequence.Stream >= last.Sequence {
			return live, nil
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

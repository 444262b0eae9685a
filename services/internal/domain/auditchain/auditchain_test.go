package auditchain

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func chain(t *testing.T, n int, first uint64, prev string) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		r := Record{Tenant: "acme", Seq: first + uint64(i), PrevHash: prev, Kind: KindEvent,
			SourceStream: "EVENTS", SourceSeq: uint64(i + 1), At: time.Unix(1700000000, int64(i)).UTC(), ID: "e", Type: "x"}
		b, err := Seal(&r)
		if err != nil {
			t.Fatal(err)
		}
		prev = r.Hash
		out = append(out, b)
	}
	return out
}

func TestVerify(t *testing.T) {
	good := chain(t, 5, 1, "")
	anchored := chain(t, 3, 40, "abc")
	forged := append([][]byte{}, good...)
	forged[2] = bytes.Replace(good[2], []byte(`"type":"x"`), []byte(`"type":"y"`), 1)
	reordered := [][]byte{good[0], good[2], good[1]}
	for _, c := range []struct {
		name    string
		records [][]byte
		wantSeq uint64 // 0 = ok
	}{
		{"intact", good, 0},
		{"anchored after expiry", anchored, 0},
		{"edited record", forged, 3},
		{"deleted record", [][]byte{good[0], good[1], good[3], good[4]}, 3},
		{"reordered", reordered, 2},
		{"forged genesis", [][]byte{anchored[0]}, 0},
		{"other tenant", [][]byte{bytes.Replace(good[0], []byte(`"acme"`), []byte(`"evil"`), 1)}, 1},
	} {
		res := Verify("acme", c.records)
		if c.wantSeq == 0 {
			if !res.OK {
				t.Errorf("%s: broken %+v, want ok", c.name, res.Broken)
			}
			continue
		}
		if res.OK || res.Broken.Seq != c.wantSeq {
			t.Errorf("%s: got %+v, want break at %d", c.name, res.Broken, c.wantSeq)
		}
	}
	if res := Verify("acme", anchored); res.Anchor != "abc" || res.FirstSeq != 40 || res.LastSeq != 42 {
		t.Errorf("anchored result %+v", res)
	}
	cp := Verifier{Tenant: "acme"}
	cp.Checkpoint(39, "abc")
	if err := cp.Add(anchored[0]); err != nil || !cp.Result().AnchorCheckpoint {
		t.Errorf("checkpointed anchor: %v %+v", err, cp.Result())
	}
	cp = Verifier{Tenant: "acme"}
	cp.Checkpoint(38, "abc")
	if err := cp.Add(anchored[0]); !errors.Is(err, ErrBroken) {
		t.Errorf("gap after checkpoint not detected: %v", err)
	}
	cp = Verifier{Tenant: "acme"}
	cp.Checkpoint(39, "abd")
	if err := cp.Add(anchored[0]); !errors.Is(err, ErrBroken) {
		t.Errorf("wrong checkpoint hash not detected: %v", err)
	}
	cp = Verifier{Tenant: "acme"}
	cp.Checkpoint(0, "")
	if err := cp.Add(good[1]); !errors.Is(err, ErrBroken) || cp.Result().Broken.Seq != 1 {
		t.Errorf("missing genesis without checkpoint not detected: %v", err)
	}
	var v Verifier
	for _, r := range good[:3] {
		_ = v.Add(r)
	}
	if err := v.ExpectHead(5, ""); !errors.Is(err, ErrBroken) {
		t.Errorf("truncated tail: %v", err)
	}
}

// The hash depends on the stored bytes, not on key order or this struct.
func TestHashIsCanonical(t *testing.T) {
	a, _ := Hash([]byte(`{"b":1,"a":"x","hash":"zzz","n":12345678901234567890}`))
	b, _ := Hash([]byte(`{"n":12345678901234567890,"a":"x","b":1}`))
	if a != b || a == "" {
		t.Fatalf("hashes differ: %s %s", a, b)
	}
	if c, _ := Hash([]byte(`{"n":12345678901234567891,"a":"x","b":1}`)); c == a {
		t.Fatal("large number change not detected")
	}
}

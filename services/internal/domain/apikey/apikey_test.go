package apikey

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := Prefix + strings.Repeat("0", 16) + "_" + strings.Repeat("f", 64)
	if _, _, err := Parse(good); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "hk_", good[:len(good)-1], strings.ToUpper(good), "xx" + good[2:], good + "0", strings.Replace(good, "_", "-", 2)} {
		if _, _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// TestNew: a new key parses back to its record's id, only its own secret
// matches the record, and the stored form does not contain the secret.
func TestNew(t *testing.T) {
	rec, key := New("acme", "ci", "admin")
	id, secret, err := Parse(key)
	if err != nil {
		t.Fatalf("Parse(New()) = %v", err)
	}
	if id != rec.ID || !ValidID(id) || rec.Tenant != "acme" || rec.Name != "ci" || rec.CreatedBy != "admin" || rec.CreatedAt.IsZero() {
		t.Errorf("record %+v for key id %s", rec, id)
	}
	if !rec.Matches(secret) {
		t.Error("the key's own secret does not match")
	}
	if rec.Matches(strings.Repeat("0", 64)) || rec.Matches("") {
		t.Error("another secret matches")
	}
	if (Record{ID: id, Hash: "not hex"}).Matches(secret) {
		t.Error("a record with a broken hash matches")
	}
	b, _ := json.Marshal(rec)
	if strings.Contains(string(b), secret) {
		t.Error("the secret is in the stored form")
	}
	if rec2, key2 := New("acme", "", "admin"); rec2.ID == rec.ID || key2 == key {
		t.Error("two keys are the same")
	}
}

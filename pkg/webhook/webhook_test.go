package webhook_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/webhook"
)

// The Standard Webhooks reference vector (standard-webhooks spec and the
// reference libraries' tests).
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vecHeaders(sig string, ts int64) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, vecID)
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func atVector() time.Time { return time.Unix(vecTS, 0) }

func TestSignMatchesStandardWebhooksVector(t *testing.T) {
	s, err := webhook.NewSigner([]string{vecSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Sign(vecID, atVector(), []byte(vecBody)); got != vecSig {
		t.Fatalf("Sign = %q, want %q", got, vecSig)
	}
	// The reference libraries accept the secret without its prefix too.
	s2, err := webhook.NewSigner([]string{strings.TrimPrefix(vecSecret, webhook.SecretPrefix)}, nil)
	if err != nil || s2.Sign(vecID, atVector(), []byte(vecBody)) != vecSig {
		t.Fatalf("unprefixed secret: %v", err)
	}
}

func TestVerifyVector(t *testing.T) {
	v, err := webhook.NewVerifier([]string{vecSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.Now = atVector
	cases := []struct {
		name    string
		h       http.Header
		body    string
		wantErr error
	}{
		{"valid", vecHeaders(vecSig, vecTS), vecBody, nil},
		{"valid among others", vecHeaders("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+vecSig, vecTS), vecBody, nil},
		{"unknown version ignored", vecHeaders("v2,"+strings.TrimPrefix(vecSig, "v1,"), vecTS), vecBody, webhook.ErrNoMatch},
		{"tampered body", vecHeaders(vecSig, vecTS), `{"test": 2432232315}`, webhook.ErrNoMatch},
		{"wrong id", func() http.Header { h := vecHeaders(vecSig, vecTS); h.Set(webhook.HeaderID, "msg_other"); return h }(), vecBody, webhook.ErrNoMatch},
		{"too old", vecHeaders(vecSig, vecTS-int64(webhook.DefaultTolerance/time.Second)-1), vecBody, webhook.ErrTooOld},
		{"too new", vecHeaders(vecSig, vecTS+int64(webhook.DefaultTolerance/time.Second)+1), vecBody, webhook.ErrTooNew},
		{"bad timestamp", func() http.Header { h := vecHeaders(vecSig, vecTS); h.Set(webhook.HeaderTimestamp, "soon"); return h }(), vecBody, webhook.ErrInvalidTimestamp},
		{"missing signature", vecHeaders("", vecTS), vecBody, webhook.ErrMissingHeaders},
		{"garbage signature", vecHeaders("v1,!!!", vecTS), vecBody, webhook.ErrNoMatch},
	}
	for _, c := range cases {
		if err := v.Verify(c.h, []byte(c.body)); !errors.Is(err, c.wantErr) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.wantErr)
		}
	}
}

// A timestamp just inside the tolerance verifies; just outside it fails.
func TestToleranceEdges(t *testing.T) {
	v, _ := webhook.NewVerifier([]string{vecSecret}, nil)
	v.Tolerance = time.Minute
	now := time.Now()
	v.Now = func() time.Time { return now }
	s, _ := webhook.NewSigner([]string{vecSecret}, nil)
	for skew, want := range map[time.Duration]error{
		-59 * time.Second: nil, 59 * time.Second: nil,
		-61 * time.Second: webhook.ErrTooOld, 61 * time.Second: webhook.ErrTooNew,
	} {
		h := http.Header{}
		s.SetHeaders(h, vecID, now.Add(skew), []byte(vecBody))
		if err := v.Verify(h, []byte(vecBody)); !errors.Is(err, want) {
			t.Errorf("skew %s: Verify = %v, want %v", skew, err, want)
		}
	}
}

// During a rotation the sender signs with both secrets; receivers holding
// either the old or the new one verify.
func TestRotationTwoSecrets(t *testing.T) {
	oldSec, newSec := vecSecret, webhook.NewSecret()
	s, err := webhook.NewSigner([]string{newSec, oldSec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	h := http.Header{}
	s.SetHeaders(h, vecID, now, []byte(vecBody))
	if n := len(strings.Fields(h.Get(webhook.HeaderSignature))); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	for _, secrets := range [][]string{{oldSec}, {newSec}, {webhook.NewSecret(), newSec}} {
		v, _ := webhook.NewVerifier(secrets, nil)
		if err := v.Verify(h, []byte(vecBody)); err != nil {
			t.Errorf("receiver with %d secrets: %v", len(secrets), err)
		}
	}
	v, _ := webhook.NewVerifier([]string{webhook.NewSecret()}, nil)
	if err := v.Verify(h, []byte(vecBody)); !errors.Is(err, webhook.ErrNoMatch) {
		t.Errorf("unrelated secret: %v", err)
	}
}

// v1a signatures verify with crypto/ed25519 alone, and with the Verifier.
func TestEd25519(t *testing.T) {
	priv, pub := webhook.NewKeyPair()
	if got, err := webhook.PublicKeyOf(priv); err != nil || got != pub {
		t.Fatalf("PublicKeyOf = %q, %v", got, err)
	}
	s, err := webhook.NewSigner([]string{vecSecret}, []string{priv})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	h := http.Header{}
	s.SetHeaders(h, vecID, now, []byte(vecBody))
	var v1a string
	for _, sig := range strings.Fields(h.Get(webhook.HeaderSignature)) {
		if rest, ok := strings.CutPrefix(sig, "v1a,"); ok {
			v1a = rest
		}
	}
	raw, err := base64.StdEncoding.DecodeString(v1a)
	if err != nil {
		t.Fatalf("v1a signature %q: %v", v1a, err)
	}
	pk, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(pub, webhook.PublicKeyPrefix))
	content := vecID + "." + strconv.FormatInt(now.Unix(), 10) + "." + vecBody
	if !ed25519.Verify(ed25519.PublicKey(pk), []byte(content), raw) {
		t.Error("crypto/ed25519 rejects the v1a signature")
	}
	if ed25519.Verify(ed25519.PublicKey(pk), []byte(content+" "), raw) {
		t.Error("v1a signature verifies a different body")
	}
	v, _ := webhook.NewVerifier(nil, []string{pub})
	if err := v.Verify(h, []byte(vecBody)); err != nil {
		t.Errorf("Verifier with the public key: %v", err)
	}
	_, otherPub := webhook.NewKeyPair()
	v, _ = webhook.NewVerifier(nil, []string{otherPub})
	if err := v.Verify(h, []byte(vecBody)); !errors.Is(err, webhook.ErrNoMatch) {
		t.Errorf("other public key: %v", err)
	}
}

func TestBadKeys(t *testing.T) {
	if _, err := webhook.NewSigner(nil, nil); !errors.Is(err, webhook.ErrInvalidKey) {
		t.Errorf("no keys: %v", err)
	}
	if _, err := webhook.NewSigner([]string{"whsec_%%%"}, nil); !errors.Is(err, webhook.ErrInvalidKey) {
		t.Errorf("bad secret: %v", err)
	}
	if _, err := webhook.NewSigner(nil, []string{"whsk_AAAA"}); !errors.Is(err, webhook.ErrInvalidKey) {
		t.Errorf("short ed25519 key: %v", err)
	}
}

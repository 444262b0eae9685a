// Package webhook signs and verifies webhook requests in the Standard
// Webhooks scheme (https://www.standardwebhooks.com): the headers
// webhook-id, webhook-timestamp and webhook-signature, where the signature
// covers "<id>.<timestamp>.<body>".
//
//   - "v1,<base64>" is HMAC-SHA256 with a symmetric secret "whsec_<base64>".
//   - "v1a,<base64>" is ed25519 with a private key "whsk_<base64>"; receivers
//     verify with the public key "whpk_<base64>".
//
// Several signatures, separated by spaces, are sent while a secret is being
// rotated; a receiver accepts the request if any of them verifies. This
// package is public so that Go receivers can import the verifier.
package webhook

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Prefixes of encoded keys.
const (
	SecretPrefix     = "whsec_"
	PrivateKeyPrefix = "whsk_"
	PublicKeyPrefix  = "whpk_"
)

// DefaultTolerance is how far a timestamp may be from the receiver's clock.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify. They are safe to show: none includes a secret.
var (
	ErrMissingHeaders   = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrInvalidTimestamp = errors.New("webhook: invalid webhook-timestamp")
	ErrTooOld           = errors.New("webhook: timestamp too old")
	ErrTooNew           = errors.New("webhook: timestamp too far in the future")
	ErrNoMatch          = errors.New("webhook: no signature matches")
	ErrInvalidKey       = errors.New("webhook: invalid key")
)

// NewSecret returns a fresh HMAC secret, "whsec_" and 32 random bytes in
// base64.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// NewKeyPair returns a fresh ed25519 pair as ("whsk_...", "whpk_...").
func NewKeyPair() (private, public string) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	return PrivateKeyPrefix + base64.StdEncoding.EncodeToString(priv.Seed()),
		PublicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// DecodeSecret returns the raw bytes of a "whsec_" secret. A secret without
// the prefix is taken as base64 too, as the Standard Webhooks libraries do.
func DecodeSecret(secret string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%w: secret is not base64", ErrInvalidKey)
	}
	return b, nil
}

func decodePrivate(key string) (ed25519.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, PrivateKeyPrefix))
	if err != nil || len(b) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: ed25519 private key must be a base64 32-byte seed", ErrInvalidKey)
	}
	return ed25519.NewKeyFromSeed(b), nil
}

func decodePublic(key string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, PublicKeyPrefix))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: ed25519 public key must be 32 bytes in base64", ErrInvalidKey)
	}
	return ed25519.PublicKey(b), nil
}

// PublicKeyOf returns the "whpk_" public key of a "whsk_" private key.
func PublicKeyOf(private string) (string, error) {
	k, err := decodePrivate(private)
	if err != nil {
		return "", err
	}
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey)), nil
}

func signedContent(id string, ts int64, body []byte) []byte {
	b := make([]byte, 0, len(id)+len(body)+24)
	b = append(b, id...)
	b = append(b, '.')
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, '.')
	return append(b, body...)
}

// Signer produces the webhook-signature value for a set of keys: every
// HMAC secret and every ed25519 private key contributes one signature.
type Signer struct {
	secrets [][]byte
	privs   []ed25519.PrivateKey
}

// NewSigner decodes the keys once. hmacSecrets are "whsec_" values;
// ed25519Keys are "whsk_" values. During a rotation, pass both secrets.
func NewSigner(hmacSecrets, ed25519Keys []string) (*Signer, error) {
	s := &Signer{}
	for _, sec := range hmacSecrets {
		b, err := DecodeSecret(sec)
		if err != nil {
			return nil, err
		}
		s.secrets = append(s.secrets, b)
	}
	for _, k := range ed25519Keys {
		p, err := decodePrivate(k)
		if err != nil {
			return nil, err
		}
		s.privs = append(s.privs, p)
	}
	if len(s.secrets)+len(s.privs) == 0 {
		return nil, fmt.Errorf("%w: no signing key", ErrInvalidKey)
	}
	return s, nil
}

// Sign returns the webhook-signature header value for id, ts and body.
func (s *Signer) Sign(id string, ts time.Time, body []byte) string {
	content := signedContent(id, ts.Unix(), body)
	sigs := make([]string, 0, len(s.secrets)+len(s.privs))
	for _, sec := range s.secrets {
		m := hmac.New(sha256.New, sec)
		m.Write(content)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	for _, p := range s.privs {
		sigs = append(sigs, "v1a,"+base64.StdEncoding.EncodeToString(ed25519.Sign(p, content)))
	}
	return strings.Join(sigs, " ")
}

// SetHeaders signs body and sets the three webhook headers on h.
func (s *Signer) SetHeaders(h http.Header, id string, ts time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, s.Sign(id, ts, body))
}

// Verifier checks signed requests against a rotation list of keys.
type Verifier struct {
	secrets   [][]byte
	pubs      []ed25519.PublicKey
	Tolerance time.Duration
	Now       func() time.Time
}

// NewVerifier decodes "whsec_" secrets and "whpk_" public keys. Any one of
// them verifying is enough, which is how a receiver rides a rotation.
func NewVerifier(hmacSecrets, publicKeys []string) (*Verifier, error) {
	v := &Verifier{Tolerance: DefaultTolerance, Now: time.Now}
	for _, sec := range hmacSecrets {
		b, err := DecodeSecret(sec)
		if err != nil {
			return nil, err
		}
		v.secrets = append(v.secrets, b)
	}
	for _, k := range publicKeys {
		p, err := decodePublic(k)
		if err != nil {
			return nil, err
		}
		v.pubs = append(v.pubs, p)
	}
	if len(v.secrets)+len(v.pubs) == 0 {
		return nil, fmt.Errorf("%w: no verification key", ErrInvalidKey)
	}
	return v, nil
}

// Verify checks the headers of a received request against its raw body. It
// returns nil, or one of the Err values above (possibly wrapped).
func (v *Verifier) Verify(h http.Header, body []byte) error {
	id, tsRaw, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsRaw == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	now := v.Now()
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	switch t := time.Unix(ts, 0); {
	case now.Sub(t) > tol:
		return ErrTooOld
	case t.Sub(now) > tol:
		return ErrTooNew
	}
	content := signedContent(id, ts, body)
	var macs [][]byte
	for _, sec := range v.secrets {
		m := hmac.New(sha256.New, sec)
		m.Write(content)
		macs = append(macs, m.Sum(nil))
	}
	for _, sig := range strings.Fields(sigs) {
		version, val, ok := strings.Cut(sig, ",")
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(val)
		if err != nil {
			continue
		}
		switch version {
		case "v1":
			for _, mac := range macs {
				if subtle.ConstantTimeCompare(mac, raw) == 1 {
					return nil
				}
			}
		case "v1a":
			for _, p := range v.pubs {
				if ed25519.Verify(p, content, raw) {
					return nil
				}
			}
		}
	}
	return ErrNoMatch
}

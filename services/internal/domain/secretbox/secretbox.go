// Package secretbox encrypts customers' secrets at rest with AES-256-GCM
// under versioned operator keys, so that a key can be rotated: new secrets
// are sealed with the current key and old ones still open with theirs.
//
// A sealed value is "<key version>:<base64(nonce | ciphertext)>". The
// plaintext never appears in an error.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownKey means a value was sealed with a key version not configured.
var ErrUnknownKey = errors.New("secretbox: unknown key version")

// ErrCorrupt means a sealed value does not decrypt.
var ErrCorrupt = errors.New("secretbox: sealed value is corrupt or was sealed under another key")

// Keyring holds the operator keys; the first is current.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// Parse reads "v2:<base64 32 bytes>,v1:<base64 32 bytes>" (the value of
// HERALD_SECRET_KEYS). The first entry seals new values.
func Parse(spec string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		ver, b64, ok := strings.Cut(part, ":")
		if !ok || ver == "" || strings.ContainsAny(ver, ": ") {
			return nil, fmt.Errorf("secretbox: key %d: want <version>:<base64 key>", i+1)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("secretbox: key %q: want 32 bytes in base64", ver)
		}
		if _, dup := k.aeads[ver]; dup {
			return nil, fmt.Errorf("secretbox: key version %q given twice", ver)
		}
		block, _ := aes.NewCipher(raw)
		aead, _ := cipher.NewGCM(block)
		k.aeads[ver] = aead
		if k.current == "" {
			k.current = ver
		}
	}
	if k.current == "" {
		return nil, errors.New("secretbox: no key configured")
	}
	return k, nil
}

// NewKeySpec returns a fresh one-key spec "v1:<base64>", for the dev default.
func NewKeySpec() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "v1:" + base64.StdEncoding.EncodeToString(b)
}

// Seal encrypts plaintext under the current key.
func (k *Keyring) Seal(plaintext string) string {
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := aead.Seal(nonce, nonce, []byte(plaintext), []byte(k.current))
	return k.current + ":" + base64.StdEncoding.EncodeToString(out)
}

// Open decrypts a sealed value.
func (k *Keyring) Open(sealed string) (string, error) {
	ver, b64, ok := strings.Cut(sealed, ":")
	if !ok {
		return "", ErrCorrupt
	}
	aead, ok := k.aeads[ver]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownKey, ver)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) < aead.NonceSize() {
		return "", ErrCorrupt
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(ver))
	if err != nil {
		return "", ErrCorrupt
	}
	return string(pt), nil
}

// NeedsReseal reports whether sealed was made under an older key, so a
// rotation job can re-seal it under the current one.
func (k *Keyring) NeedsReseal(sealed string) bool {
	ver, _, _ := strings.Cut(sealed, ":")
	return ver != k.current
}

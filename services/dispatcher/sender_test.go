package dispatcher

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/webhook"
	"github.com/heraldhq/herald/services/internal/domain/subscription"
)

func clientCert(t *testing.T) (certPEM, keyPEM string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "herald-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cert, _ = x509.ParseCertificate(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), cert
}

// mTLS: the endpoint requires a client certificate; the subscription's
// certificate is presented and the endpoint's CA is trusted.
func TestMTLSDelivery(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	certPEM, keyPEM, cert := clientCert(t)
	var mu sync.Mutex
	var peers []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			peers = append(peers, r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		mu.Unlock()
		w.WriteHeader(200)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	withCert, _ := h.putSub(subscription.Subscription{ID: "with-cert", URL: srv.URL, Auth: subscription.Auth{
		ClientCertPEM: certPEM, ClientKeySealed: h.keys.Seal(keyPEM), CACertPEM: caPEM}})
	without, _ := h.putSub(subscription.Subscription{ID: "without", URL: srv.URL, RetryPolicy: subscription.RetrySingle,
		Auth: subscription.Auth{CACertPEM: caPEM}})
	h.start(testConfig())
	h.notify("acme", "alert.opened", "n-1")
	h.waitState("n-1", withCert.ID, stateDelivered)
	h.waitState("n-1", without.ID, stateDeadLettered)
	mu.Lock()
	defer mu.Unlock()
	if len(peers) != 1 || peers[0] != "herald-client" {
		t.Errorf("peers %v, want one herald-client", peers)
	}
}

// Binary mode, basic auth, custom headers and an ed25519 signature next to
// the HMAC one; a template body; bearer auth.
func TestModesAndAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rc := newReceiver(t, nil)
	priv, pub := webhook.NewKeyPair()
	bin, secret := h.putSub(subscription.Subscription{ID: "bin", URL: rc.URL + "/bin", PayloadMode: subscription.PayloadBinary,
		Headers: map[string]string{"X-Team": "ops"},
		Auth: subscription.Auth{Type: subscription.AuthBasic, Username: "u", PasswordSealed: h.keys.Seal("p@ss"),
			Ed25519KeySealed: h.keys.Seal(priv), Ed25519Public: pub}})
	tpl, _ := h.putSub(subscription.Subscription{ID: "tpl", URL: rc.URL + "/tpl", PayloadMode: subscription.PayloadTemplate,
		Template: `{"text":"{{.type}} {{.data.title}}"}`,
		Auth:     subscription.Auth{Type: subscription.AuthBearer, TokenSealed: h.keys.Seal("tok-123")}})
	h.start(testConfig())
	h.notify("acme", "alert.opened", "n-1")
	h.waitState("n-1", bin.ID, stateDelivered)
	h.waitState("n-1", tpl.ID, stateDelivered)
	for _, r := range rc.requests() {
		switch r.Path {
		case "/bin":
			if r.Header.Get("ce-id") != "n-1" || r.Header.Get("ce-type") != "alert.opened" || r.Header.Get("X-Team") != "ops" {
				t.Errorf("binary headers %v", r.Header)
			}
			if u, p, ok := (&http.Request{Header: r.Header}).BasicAuth(); !ok || u != "u" || p != "p@ss" {
				t.Errorf("basic auth %q %q %v", u, p, ok)
			}
			if !strings.Contains(string(r.Body), "Disk fülle") || strings.Contains(string(r.Body), "specversion") {
				t.Errorf("binary body %s", r.Body)
			}
			verify(t, secret, r)
			// The v1a signature checks with crypto/ed25519 alone.
			ts, _ := strconv.ParseInt(r.Header.Get(webhook.HeaderTimestamp), 10, 64)
			content := r.ID + "." + strconv.FormatInt(ts, 10) + "." + string(r.Body)
			pk, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(pub, webhook.PublicKeyPrefix))
			var ok bool
			for _, sig := range strings.Fields(r.Signature) {
				if v, ok2 := strings.CutPrefix(sig, "v1a,"); ok2 {
					raw, _ := base64.StdEncoding.DecodeString(v)
					ok = ed25519.Verify(ed25519.PublicKey(pk), []byte(content), raw)
				}
			}
			if !ok {
				t.Errorf("no valid v1a signature in %q", r.Signature)
			}
		case "/tpl":
			if string(r.Body) != `{"text":"alert.opened Disk fülle"}` {
				t.Errorf("template body %s", r.Body)
			}
			if r.Header.Get("Authorization") != "Bearer tok-123" {
				t.Errorf("bearer header missing")
			}
		}
	}
}

func TestTemplateSandbox(t *testing.T) {
	t.Parallel()
	if _, err := renderTemplate(`{{range 100000000}}xxxxxxxxxxxxxxxx{{end}}`, []byte(`{}`)); err == nil {
		t.Error("unbounded output accepted")
	}
	start := time.Now()
	if _, err := renderTemplate(`{{range 10000000000}}{{end}}`, []byte(`{}`)); err == nil {
		t.Error("endless template accepted")
	}
	if time.Since(start) > 10*time.Second {
		t.Error("template timeout not enforced")
	}
}

// A tenant's notification reaches its own subscriptions and those of its
// ancestors that include sub-accounts, and no others.
func TestIncludeSubaccounts(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.putTenant("acme-eu", "acme")
	h.putTenant("acme-eu-paris", "acme-eu")
	h.putTenant("other", "")
	rc := newReceiver(t, nil)
	h.putSub(subscription.Subscription{ID: "root-incl", URL: rc.URL + "/root-incl", IncludeSubaccounts: true})
	h.putSub(subscription.Subscription{ID: "root-own", URL: rc.URL + "/root-own"})
	h.putSub(subscription.Subscription{ID: "eu", Tenant: "acme-eu", URL: rc.URL + "/eu"})
	h.putSub(subscription.Subscription{ID: "paris", Tenant: "acme-eu-paris", URL: rc.URL + "/paris"})
	h.putSub(subscription.Subscription{ID: "paris-ops", Tenant: "acme-eu-paris", URL: rc.URL + "/paris-ops", Events: []string{"operation.*"}})
	h.putSub(subscription.Subscription{ID: "paused", Tenant: "acme-eu-paris", URL: rc.URL + "/paused", Status: subscription.StatusPaused})
	h.putSub(subscription.Subscription{ID: "other", Tenant: "other", URL: rc.URL + "/other", IncludeSubaccounts: true})
	h.start(testConfig())
	h.notify("acme-eu-paris", "alert.opened", "n-1")
	rc.waitCount(t, 2)
	h.settled()
	paths := map[string]int{}
	for _, r := range rc.requests() {
		paths[r.Path]++
	}
	if len(paths) != 2 || paths["/root-incl"] != 1 || paths["/paris"] != 1 {
		t.Errorf("deliveries %v, want /root-incl and /paris once each", paths)
	}
}

// A subscription's CEL filter decides per notification; a filter that
// cannot be evaluated (a missing key) does not match.
func TestCELFilter(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rc := newReceiver(t, nil)
	h.putSub(subscription.Subscription{ID: "match", URL: rc.URL + "/match", Filter: `data.title.startsWith("Disk")`})
	h.putSub(subscription.Subscription{ID: "nomatch", URL: rc.URL + "/nomatch", Filter: `data.title == "CPU"`})
	h.putSub(subscription.Subscription{ID: "missing", URL: rc.URL + "/missing", Filter: `data.severity == "Critical"`})
	h.putSub(subscription.Subscription{ID: "attr", URL: rc.URL + "/attr", Filter: `subject == "alert-1" && type == "alert.opened"`})
	h.start(testConfig())
	h.notify("acme", "alert.opened", "n-filter")
	rc.waitCount(t, 2)
	h.settled()
	paths := map[string]int{}
	for _, r := range rc.requests() {
		paths[r.Path]++
	}
	if len(paths) != 2 || paths["/match"] != 1 || paths["/attr"] != 1 {
		t.Errorf("deliveries %v, want /match and /attr once each", paths)
	}
}

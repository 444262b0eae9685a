package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func clientPair(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "herald-client"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

// The test call presents the client certificate and trusts the custom CA;
// the key is sealed and never shown.
func TestMTLSTestCall(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.tenant("acme", "account", "")
	peer := make(chan string, 1)
	rsrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			select {
			case peer <- r.TLS.PeerCertificates[0].Subject.CommonName:
			default:
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	rsrv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	rsrv.StartTLS()
	t.Cleanup(rsrv.Close)
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rsrv.Certificate().Raw}))
	cert, key := clientPair(t)
	_, otherKey := clientPair(t)

	a := h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": rsrv.URL, "events": []string{"*"},
		"auth": map[string]any{"client_cert": cert, "client_key": otherKey}}, http.StatusBadRequest)
	if pointers(a)["/auth/client_cert"] == "" || strings.Contains(a.raw, "PRIVATE KEY") {
		t.Errorf("mismatched pair: %s", a.raw)
	}
	a = h.admin("POST", "/v1/tenants/acme/subscriptions", map[string]any{"url": rsrv.URL, "events": []string{"*"},
		"auth": map[string]any{"client_cert": cert, "client_key": key, "ca_cert": ca}}, http.StatusCreated)
	id := a.body["id"].(string)
	if strings.Contains(a.raw, "PRIVATE KEY") || a.body["auth"].(map[string]any)["client_key_set"] != true {
		t.Errorf("create shows the key or not its presence: %s", a.raw)
	}
	res := h.admin("POST", "/v1/tenants/acme/subscriptions/"+id+"/test", nil, http.StatusOK)
	if res.body["status"] != float64(204) {
		t.Fatalf("mTLS test call = %s", res.raw)
	}
	if cn := <-peer; cn != "herald-client" {
		t.Errorf("peer certificate CN = %q", cn)
	}
	// PATCH with the same certificate keeps the sealed key.
	h.admin("PATCH", "/v1/tenants/acme/subscriptions/"+id, map[string]any{"auth": map[string]any{"client_cert": cert, "ca_cert": ca}}, http.StatusOK)
	res = h.admin("POST", "/v1/tenants/acme/subscriptions/"+id+"/test", nil, http.StatusOK)
	if res.body["status"] != float64(204) {
		t.Errorf("after PATCH = %s", res.raw)
	}
	if strings.Contains(h.logs.String(), "PRIVATE KEY") {
		t.Error("logs hold the key")
	}
}

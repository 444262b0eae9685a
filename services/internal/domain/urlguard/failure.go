package urlguard

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
)

// Failure classes of a call to a webhook URL, as Failure names them.
const (
	FailBlocked    = "blocked_address"    // this package refused the address
	FailRefused    = "connection_refused" // nothing listens there
	FailConnection = "connection"         // reset, unreachable, DNS
	FailTimeout    = "timeout"
	FailTLS        = "tls"
	FailProtocol   = "protocol" // the peer answered, but not HTTP
)

// Failure names the class of a failed HTTP call and describes it in words
// of Herald's own. The description never repeats what the peer sent: Go's
// HTTP client quotes the first bytes of a malformed answer (a NATS INFO
// banner, an SMTP greeting), which would make Herald a reader of whatever
// service the URL points at. Nor does it repeat the URL.
func Failure(err error) (class, message string) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var (
		blocked  *BlockedError
		dnsErr   *net.DNSError
		ne       net.Error
		alert    tls.AlertError
		rh       tls.RecordHeaderError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &blocked):
		return FailBlocked, blocked.Error()
	case errors.Is(err, ErrBlocked):
		return FailBlocked, "the dialled address is not allowed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return FailRefused, "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return FailTimeout, "timed out"
	case errors.As(err, &dnsErr):
		return FailConnection, "the host does not resolve"
	case errors.As(err, &unknown):
		return FailTLS, "TLS: certificate signed by an unknown authority"
	case errors.As(err, &hostname):
		return FailTLS, "TLS: certificate is not valid for the host"
	case errors.As(err, &invalid):
		return FailTLS, "TLS: certificate is invalid or expired"
	case errors.As(err, &verify):
		return FailTLS, "TLS: certificate verification failed"
	case errors.As(err, &alert):
		return FailTLS, "TLS: the peer sent alert " + alert.Error()
	case errors.As(err, &rh):
		return FailTLS, "TLS: the peer does not speak TLS"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return FailConnection, "connection reset by the peer"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return FailConnection, "host unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return FailProtocol, "the peer closed the connection without an HTTP answer"
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "malformed HTTP"), strings.Contains(msg, "malformed MIME"),
		strings.Contains(msg, "http2:"), strings.Contains(msg, "transport connection broken"),
		strings.Contains(msg, "readLoopPeekFailLocked"): // the peer spoke first, as NATS and SMTP do
		return FailProtocol, "the peer's answer is not HTTP"
	case strings.Contains(msg, "server closed idle connection"):
		return FailProtocol, "the peer closed the connection without an HTTP answer"
	case strings.Contains(msg, "HTTP response to HTTPS client"):
		return FailTLS, "TLS: the peer does not speak TLS"
	case strings.HasPrefix(msg, "tls:"):
		return FailTLS, "TLS handshake failed"
	}
	return FailConnection, "connection failed"
}

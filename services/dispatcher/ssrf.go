package dispatcher

import (
	"net/netip"
	"syscall"

	"github.com/heraldhq/herald/pkg/urlguard"
)

// The dial-time SSRF defence is the registry's: one classification of
// addresses (pkg/urlguard), applied at registration and again here on the
// resolved IP of every connection, so DNS rebinding cannot bypass it.
var errBlocked = urlguard.ErrBlocked

// checkAddr reports why addr may not be dialled, or nil.
func checkAddr(addr netip.Addr, allow []netip.Prefix) error { return urlguard.CheckIP(addr, allow) }

// dialControl returns a net.Dialer.Control that applies checkAddr.
func dialControl(allow []netip.Prefix) func(network, address string, c syscall.RawConn) error {
	return urlguard.DialControl(allow)
}

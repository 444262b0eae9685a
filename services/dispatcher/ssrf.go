package dispatcher

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// The SSRF guard runs in net.Dialer.Control, on the address the socket is
// about to connect to, after DNS resolution: a hostname that resolves (or
// re-resolves, DNS rebinding) to a blocked address is refused all the same.
// pkg/urlguard does not exist yet, so the rules live here.

// errBlocked marks a connection the guard refused.
var errBlocked = errors.New("blocked address")

var blockedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this" network
		"10.0.0.0/8",      // private
		"100.64.0.0/10",   // CGNAT (includes 100.100.100.200, Alibaba metadata)
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local (includes 169.254.169.254 metadata)
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"192.168.0.0/16",  // private
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, broadcast
		"::/128",          // unspecified
		"::1/128",         // loopback
		"64:ff9b::/96",    // NAT64
		"64:ff9b:1::/48",  // local-use NAT64
		"100::/64",        // discard
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4
		"fc00::/7",        // unique local (includes fd00:ec2::254, AWS metadata)
		"fe80::/10",       // link-local
		"ff00::/8",        // multicast
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// checkAddr reports why addr may not be dialled, or nil. An address inside
// an allowed prefix passes. IPv4-mapped IPv6 is judged as its IPv4 address;
// NAT64 and 6to4 addresses, which can reach any IPv4 address, are blocked
// as a whole unless allowed.
func checkAddr(addr netip.Addr, allow []netip.Prefix) error {
	addr = addr.WithZone("")
	for _, p := range allow {
		if p.Contains(addr) {
			return nil
		}
	}
	if addr.Is4In6() {
		// ::ffff:a.b.c.d reaches a.b.c.d: judge it as that.
		return checkAddr(addr.Unmap(), allow)
	}
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return fmt.Errorf("%w %s (in %s)", errBlocked, addr, p)
		}
	}
	return nil
}

// dialControl returns a net.Dialer.Control that applies checkAddr.
func dialControl(allow []netip.Prefix) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", errBlocked, address)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: unparsable %s", errBlocked, host)
		}
		return checkAddr(ip, allow)
	}
}

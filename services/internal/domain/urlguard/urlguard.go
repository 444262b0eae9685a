// Package urlguard keeps Herald from being used to reach addresses it must
// not: webhook URLs that resolve to loopback, private, link-local, cloud
// metadata or other non-global addresses are refused, with a reason. The
// registry checks a URL when it is registered (CheckURL); the dispatcher
// and the registry's test call check again at dial time (CheckIP through
// DialControl), because DNS can change between the two.
//
// The operator may allow chosen ranges (e.g. loopback on the dev default).
package urlguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrBlocked is wrapped by every refusal, so callers can test errors.Is.
var ErrBlocked = errors.New("address not allowed")

// BlockedError names the refused address and its class.
type BlockedError struct {
	IP    netip.Addr
	Class string // e.g. "loopback", "private (RFC 1918)", "cloud metadata"
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("address %s is %s: not allowed as a webhook destination", e.IP, e.Class)
}

// Unwrap makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Unwrap() error { return ErrBlocked }

type class struct {
	prefix netip.Prefix
	name   string
}

func p(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// Ordered: the most specific name first (metadata before link-local).
var v4Classes = []class{
	{p("169.254.169.254/32"), "cloud metadata"},
	{p("100.100.100.200/32"), "cloud metadata"},
	{p("0.0.0.0/8"), "unspecified (this network)"},
	{p("127.0.0.0/8"), "loopback"},
	{p("10.0.0.0/8"), "private (RFC 1918)"},
	{p("172.16.0.0/12"), "private (RFC 1918)"},
	{p("192.168.0.0/16"), "private (RFC 1918)"},
	{p("169.254.0.0/16"), "link-local"},
	{p("100.64.0.0/10"), "carrier-grade NAT (RFC 6598)"},
	{p("192.0.0.0/24"), "IETF protocol assignment"},
	{p("192.0.2.0/24"), "documentation"},
	{p("198.51.100.0/24"), "documentation"},
	{p("203.0.113.0/24"), "documentation"},
	{p("198.18.0.0/15"), "benchmarking"},
	{p("192.88.99.0/24"), "6to4 relay anycast"},
	{p("224.0.0.0/4"), "multicast"},
	{p("255.255.255.255/32"), "broadcast"},
	{p("240.0.0.0/4"), "reserved"},
}

var v6Classes = []class{
	{p("fd00:ec2::254/128"), "cloud metadata"},
	{p("::/128"), "unspecified"},
	{p("::1/128"), "loopback"},
	{p("fe80::/10"), "link-local"},
	{p("fc00::/7"), "unique-local"},
	{p("ff00::/8"), "multicast"},
	{p("2001:db8::/32"), "documentation"},
	{p("3fff::/20"), "documentation"},
	{p("2001:2::/48"), "benchmarking"},
	{p("100::/64"), "discard-only"},
	{p("64:ff9b:1::/48"), "local-use NAT64"},
	{p("2001::/32"), "Teredo"},
	{p("::/96"), "IPv4-compatible (deprecated)"},
}

var (
	nat64     = p("64:ff9b::/96")
	sixToFour = p("2002::/16")
	global6   = p("2000::/3")
)

// CheckIP returns nil if ip may be dialled, or a *BlockedError naming its
// class. Addresses inside allow are always permitted. IPv4-mapped IPv6
// addresses are judged as IPv4; NAT64 (64:ff9b::/96) and 6to4 (2002::/16)
// addresses are judged by the IPv4 address they embed.
func CheckIP(ip netip.Addr, allow []netip.Prefix) error {
	if !ip.IsValid() {
		return &BlockedError{IP: ip, Class: "invalid"}
	}
	ip = ip.WithZone("")
	orig := ip
	ip = ip.Unmap()
	for _, a := range allow {
		if a.Contains(ip) || a.Contains(orig) {
			return nil
		}
	}
	if ip.Is4() {
		for _, c := range v4Classes {
			if c.prefix.Contains(ip) {
				return &BlockedError{IP: orig, Class: c.name}
			}
		}
		return nil
	}
	switch {
	case nat64.Contains(ip):
		b := ip.As16()
		if err := CheckIP(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), allow); err != nil {
			return &BlockedError{IP: orig, Class: "NAT64 of a blocked IPv4 address (" + err.(*BlockedError).Class + ")"}
		}
		return nil
	case sixToFour.Contains(ip):
		b := ip.As16()
		if err := CheckIP(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), allow); err != nil {
			return &BlockedError{IP: orig, Class: "6to4 of a blocked IPv4 address (" + err.(*BlockedError).Class + ")"}
		}
		return nil
	}
	for _, c := range v6Classes {
		if c.prefix.Contains(ip) {
			return &BlockedError{IP: orig, Class: c.name}
		}
	}
	if !global6.Contains(ip) {
		return &BlockedError{IP: orig, Class: "reserved (outside 2000::/3)"}
	}
	return nil
}

// Resolver looks up a host's addresses; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy is what the operator allows.
type Policy struct {
	// AllowHTTP permits plain http:// URLs; otherwise https is required.
	AllowHTTP bool
	// Allow lists ranges permitted even though their class is blocked.
	Allow []netip.Prefix
	// Resolver defaults to net.DefaultResolver.
	Resolver Resolver
}

// ErrInvalidURL is wrapped by refusals that are about the URL's form.
var ErrInvalidURL = errors.New("invalid webhook URL")

// CheckURL checks a webhook URL at registration: an absolute http(s) URL
// without credentials or fragment, https unless policy.AllowHTTP, whose host
// resolves only to addresses CheckIP permits. Errors never repeat the URL's
// query string.
func CheckURL(ctx context.Context, rawURL string, policy Policy) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%w: not a URL", ErrInvalidURL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !policy.AllowHTTP {
			return fmt.Errorf("%w: https is required (the operator does not allow plain http)", ErrInvalidURL)
		}
	default:
		return fmt.Errorf("%w: scheme must be https", ErrInvalidURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in the URL are not allowed; use auth", ErrInvalidURL)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%w: a fragment is not allowed", ErrInvalidURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return CheckIP(ip, policy.Allow)
	}
	if strings.HasSuffix(strings.ToLower(host), ".localhost") || strings.EqualFold(host, "localhost") {
		// RFC 6761: always loopback, whatever a resolver says.
		return CheckIP(netip.MustParseAddr("127.0.0.1"), policy.Allow)
	}
	r := policy.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: host %s does not resolve", ErrInvalidURL, host)
	}
	if len(ips) == 0 {
		return fmt.Errorf("%w: host %s has no address", ErrInvalidURL, host)
	}
	for _, ip := range ips {
		if err := CheckIP(ip, policy.Allow); err != nil {
			return fmt.Errorf("host %s: %w", host, err)
		}
	}
	return nil
}

// DialControl returns a net.Dialer Control function that refuses every
// address CheckIP blocks. It runs after DNS resolution, for each address
// actually dialled, so a host re-pointed to a private address is caught.
func DialControl(allow []netip.Prefix) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: cannot parse dialled address", ErrBlocked)
		}
		return CheckIP(ap.Addr(), allow)
	}
}

// ParsePrefixes reads a comma-separated list of CIDRs or single addresses.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if pf, err := netip.ParsePrefix(part); err == nil {
			out = append(out, pf.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(part); err == nil {
			out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		errs = append(errs, fmt.Errorf("%q is not a CIDR or an IP address", part))
	}
	return out, errors.Join(errs...)
}

package urlguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckIP(t *testing.T) {
	for _, c := range []struct {
		ip    string
		class string // "" = allowed
	}{
		{"93.184.216.34", ""},
		{"8.8.8.8", ""},
		{"2606:4700::1111", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.0.9", "loopback"},
		{"::1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.254", "carrier-grade NAT"},
		{"169.254.169.254", "cloud metadata"},
		{"100.100.100.200", "cloud metadata"},
		{"fd00:ec2::254", "cloud metadata"},
		{"fd12:3456::1", "unique-local"},
		{"fc00::1", "unique-local"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"64:ff9b::a00:1", "NAT64 of a blocked IPv4 address (private"},
		{"64:ff9b::7f00:1", "NAT64 of a blocked IPv4 address (loopback"},
		{"64:ff9b::5db8:d822", ""}, // NAT64 of a public address
		{"2002:a9fe:a9fe::1", "6to4 of a blocked IPv4 address (cloud metadata"},
		{"2002:c0a8:0101::1", "6to4 of a blocked IPv4 address (private"},
		{"2002:5db8:d822::1", ""},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"::ffff:10.0.0.1", "private"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"2001:db8::1", "documentation"},
		{"198.18.0.1", "benchmarking"},
		{"2001:2::1", "benchmarking"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"2001:0:4136:e378::1", "Teredo"},
		{"::7f00:1", "IPv4-compatible"},
	} {
		ip := netip.MustParseAddr(c.ip)
		err := CheckIP(ip, nil)
		if c.class == "" {
			if err != nil {
				t.Errorf("CheckIP(%s) = %v, want allowed", c.ip, err)
			}
			continue
		}
		var be *BlockedError
		if !errors.As(err, &be) || !errors.Is(err, ErrBlocked) {
			t.Errorf("CheckIP(%s) = %v, want blocked as %s", c.ip, err, c.class)
			continue
		}
		if !strings.HasPrefix(be.Class, c.class) {
			t.Errorf("CheckIP(%s) class %q, want %q", c.ip, be.Class, c.class)
		}
	}
}

func TestCheckIPAllowList(t *testing.T) {
	allow, err := ParsePrefixes("127.0.0.0/8, ::1, 10.9.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"127.0.0.1", "::1", "::ffff:127.0.0.1", "10.9.3.4"} {
		if err := CheckIP(netip.MustParseAddr(ok), allow); err != nil {
			t.Errorf("allowed %s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"10.8.0.1", "169.254.169.254", "192.168.0.1"} {
		if err := CheckIP(netip.MustParseAddr(bad), allow); err == nil {
			t.Errorf("%s allowed by %v", bad, allow)
		}
	}
	if _, err := ParsePrefixes("127.0.0.0/8,nonsense"); err == nil {
		t.Error("ParsePrefixes accepted nonsense")
	}
}

type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func TestCheckURL(t *testing.T) {
	res := fakeResolver{
		"hooks.example.com": {"93.184.216.34"},
		"mixed.example.com": {"93.184.216.34", "10.0.0.5"},
		"meta.example.com":  {"169.254.169.254"},
	}
	strict := Policy{Resolver: res}
	dev := Policy{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Resolver: res}
	for _, c := range []struct {
		url    string
		policy Policy
		want   string // substring of the error; "" = ok
	}{
		{"https://hooks.example.com/x?token=abc", strict, ""},
		{"http://hooks.example.com/x", strict, "https is required"},
		{"http://hooks.example.com/x", dev, ""},
		{"ftp://hooks.example.com/", strict, "scheme"},
		{"https://user:pw@hooks.example.com/", strict, "credentials"},
		{"https://mixed.example.com/", strict, "10.0.0.5 is private"},
		{"https://meta.example.com/", strict, "cloud metadata"},
		{"https://nowhere.example.com/", strict, "does not resolve"},
		{"https://127.0.0.1:8443/", strict, "loopback"},
		{"https://[::1]/", strict, "loopback"},
		{"https://localhost/", strict, "loopback"},
		{"http://127.0.0.1:9/", dev, ""},
		{"https://[fd00:ec2::254]/", dev, "cloud metadata"},
		{"/relative", strict, "scheme"},
	} {
		err := CheckURL(context.Background(), c.url, c.policy)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("CheckURL(%s) = %v, want ok", c.url, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("CheckURL(%s) = %v, want error containing %q", c.url, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "token=abc") {
			t.Errorf("error repeats the query: %v", err)
		}
	}
}

func TestDialControl(t *testing.T) {
	ctl := DialControl(nil)
	if err := ctl("tcp4", "127.0.0.1:80", nil); !errors.Is(err, ErrBlocked) {
		t.Errorf("dial loopback: %v", err)
	}
	if err := ctl("tcp4", "93.184.216.34:443", nil); err != nil {
		t.Errorf("dial public: %v", err)
	}
	d := net.Dialer{Control: ctl}
	if _, err := d.Dial("tcp", "127.0.0.1:1"); !errors.Is(err, ErrBlocked) {
		t.Errorf("real dial of loopback = %v, want ErrBlocked", err)
	}
}

func BenchmarkCheckIP(b *testing.B) {
	ips := []netip.Addr{netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("2606:4700::1111"), netip.MustParseAddr("64:ff9b::5db8:d822")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := CheckIP(ips[i%len(ips)], nil); err != nil {
			b.Fatal(err)
		}
	}
}

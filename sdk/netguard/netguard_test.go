package netguard

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestReason(t *testing.T) {
	tests := []struct {
		addr string
		want string // part of the reason; "" means allowed
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"203.0.113.7", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"2606:4700:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:192.168.1.1", "private"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"169.254.169.254", "link-local"},
		{"::ffff:169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "this network"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"ff05::2", "multicast"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"::ffff:100.64.0.1", "carrier-grade NAT"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"192.0.0.8", "IETF"},
		{"198.18.0.1", "benchmarking"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"64:ff9b::7f00:1", "a loopback address behind the NAT64 prefix"},
		{"64:ff9b::a9fe:a9fe", "link-local"},
		{"64:ff9b:1::1", "NAT64"},
		{"fec0::1", "site-local"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got := Reason(netip.MustParseAddr(tt.addr))
			if tt.want == "" {
				if got != "" {
					t.Fatalf("%s blocked as %q", tt.addr, got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Fatalf("%s: reason %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
	if got := Reason(netip.Addr{}); got == "" {
		t.Error("the zero Addr is allowed")
	}
}

func TestControl(t *testing.T) {
	tests := []struct {
		address string
		want    string // part of the error; "" means allowed
	}{
		{"93.184.215.14:443", ""},
		{"[2606:4700::1111]:443", ""},
		{"127.0.0.1:8080", "refused to connect to 127.0.0.1: a loopback address"},
		{"[::1]:80", "refused to connect to ::1"},
		{"[::ffff:10.1.2.3]:443", "a private address"},
		{"169.254.169.254:80", "link-local"},
		{"[fe80::1%eth0]:80", "link-local"},
		{"localhost:80", "not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			err := Control("tcp4", tt.address, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var b *BlockedError
			if !errors.As(err, &b) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a BlockedError with %q", err, tt.want)
			}
		})
	}
}

package main

import (
	"net"
	"testing"
)

// TestRequireOperatorFromBoundAddress: setup_client and register_site are
// open without the operator token only when the listener is on loopback
// both by the flag's text and by the address it bound: a host name that
// resolves off loopback (localhost mapped elsewhere) needs the token.
func TestRequireOperatorFromBoundAddress(t *testing.T) {
	lo4 := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8099}
	lo6 := &net.TCPAddr{IP: net.IPv6loopback, Port: 8099}
	far := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8099}
	far6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 8099}
	any4 := &net.TCPAddr{IP: net.IPv4zero, Port: 8099}
	for _, c := range []struct {
		flag  string
		bound net.Addr
		want  bool
	}{
		{"127.0.0.1:8099", lo4, false},
		{"[::1]:8099", lo6, false},
		{"localhost:8099", lo4, false},
		{"localhost:8099", lo6, false},
		{"localhost:8099", far, true},
		{"localhost:8099", far6, true},
		{"localhost:8099", any4, true},
		{"localhost:8099", &net.UnixAddr{Name: "/x", Net: "unix"}, true},
		{"0.0.0.0:8099", any4, true},
		{":8099", any4, true},
		{"192.0.2.1:8099", far, true},
	} {
		if got := requireOperator(c.flag, c.bound); got != c.want {
			t.Errorf("%s bound %s: operator token required %v, want %v", c.flag, c.bound, got, c.want)
		}
	}
}

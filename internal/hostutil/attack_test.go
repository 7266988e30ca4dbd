package hostutil

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// TestLoopbackLookalikes: addresses that embed 127.0.0.1 in an IPv6 form
// that is routed off the machine (NAT64, IPv4-translated, 6to4, Teredo),
// names that contain localhost but are not it, and control characters
// answer false to both questions.
func TestLoopbackLookalikes(t *testing.T) {
	for _, h := range []string{
		"64:ff9b::7f00:1", "64:ff9b::127.0.0.1", "[64:ff9b::7f00:1]", // NAT64
		"::ffff:0:7f00:1", "::ffff:0:127.0.0.1", // IPv4-translated
		"2002:7f00:1::", "2002:7f00:1::1", // 6to4
		"2001:0:7f00:1::", // Teredo
		"localhost.localdomain", "localhost.example", "xn--localhost", "local-host", "localhost\x00", "localhost\n",
		"127.0.0.1\x00", "127.0.0.1\n", "%31%32%37.0.0.1", "127.0.0.1%0a", "localhost%00",
		"::1%25", "[::1%lo]", "[fe80::1%lo]",
	} {
		if PlainHTTPStaysLocal(h) {
			t.Errorf("PlainHTTPStaysLocal(%q) = true", h)
		}
		if BrowserSecureContext(h) {
			t.Errorf("BrowserSecureContext(%q) = true", h)
		}
	}
}

// TestLoopbackOnlyDialsLoopbackOnly: the dialer guard refuses a name that
// resolves elsewhere and every non-loopback address form, and lets a real
// loopback connection through.
func TestLoopbackOnlyDialsLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:80", "[::ffff:10.0.0.1]:80", "[64:ff9b::7f00:1]:80", "0.0.0.0:80", "[::]:80", "127.0.0.1", "[::1%lo]:80", ":80"} {
		if err := LoopbackOnly("tcp", addr, nil); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("LoopbackOnly(%q) = %v", addr, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	d := net.Dialer{Control: LoopbackOnly, Timeout: 5 * time.Second}
	c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("loopback dial refused: %v", err)
	}
	c.Close()
}

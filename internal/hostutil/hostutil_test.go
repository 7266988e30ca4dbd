package hostutil

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
)

// hosts is the class of inputs, with the answer of each question:
// {host, BrowserSecureContext, PlainHTTPStaysLocal}.
var hosts = []struct {
	host          string
	secure, stays bool
}{
	// Names.
	{"localhost", true, true},
	{"LOCALHOST", true, true},
	{"LocalHost", true, true},
	{"app.localhost", true, false}, // a browser trusts it; DNS decides where it goes
	{"a.b.localhost", true, false},
	{"EVIL.LocalHost", true, false},
	{"my_app.localhost", true, false},
	{"localhost.", false, false}, // a trailing dot: sent to DNS as an absolute name
	{"app.localhost.", false, false},
	{".localhost", false, false},
	{"..localhost", false, false},
	{"a..localhost", false, false},
	{"localhost.example", false, false},
	{"localhost.evil.example", false, false},
	{"notlocalhost", false, false},
	{"evillocalhost", false, false},
	{"a b.localhost", false, false},
	{"a%2e.localhost", false, false},
	{"localhost:8080", false, false}, // a port is not part of a host
	{"example.com", false, false},
	{"", false, false},
	{" localhost", false, false},
	{"localhost ", false, false},

	// IPv4.
	{"127.0.0.1", true, true},
	{"127.0.0.2", true, true},
	{"127.255.255.254", true, true},
	{"127.0.0.1:80", false, false},
	{"127.1", false, false},           // short form: parsed by some, resolved by others
	{"0x7f.1", false, false},          // hexadecimal
	{"0x7f.0.0.1", false, false},      // hexadecimal
	{"0177.0.0.1", false, false},      // octal
	{"127.000.000.001", false, false}, // leading zeros
	{"2130706433", false, false},      // one number
	{"127.0.0.1.", false, false},
	{"[127.0.0.1]", false, false},
	{"128.0.0.1", false, false},
	{"126.255.255.255", false, false},
	{"10.0.0.1", false, false},
	{"192.168.1.1", false, false},
	{"169.254.0.1", false, false},
	{"0.0.0.0", false, false},
	{"255.255.255.255", false, false},

	// IPv6.
	{"::1", true, true},
	{"[::1]", true, true},
	{"0:0:0:0:0:0:0:1", true, true},
	{"0000:0000:0000:0000:0000:0000:0000:0001", true, true},
	{"[0:0:0:0:0:0:0:1]", true, true},
	{"::ffff:127.0.0.1", false, true}, // reaches 127.0.0.1; not in the browsers' list
	{"[::ffff:127.0.0.1]", false, true},
	{"::FFFF:7F00:1", false, true},
	{"::ffff:10.0.0.1", false, false},
	{"::127.0.0.1", false, false}, // IPv4-compatible, deprecated: not loopback
	{"::1%lo", false, false},      // a zone
	{"[::1%25lo]", false, false},
	{"::1:80", false, false},
	{"[::1]:80", false, false},
	{"[[::1]]", false, false},
	{"[::1", false, false},
	{"::1]", false, false},
	{"::", false, false},
	{"[::]", false, false},
	{"::2", false, false},
	{"fe80::1", false, false},
	{"2001:db8::1", false, false},
}

func TestBrowserSecureContext(t *testing.T) {
	for _, h := range hosts {
		if got := BrowserSecureContext(h.host); got != h.secure {
			t.Errorf("BrowserSecureContext(%q) = %v, want %v", h.host, got, h.secure)
		}
	}
}

func TestPlainHTTPStaysLocal(t *testing.T) {
	for _, h := range hosts {
		if got := PlainHTTPStaysLocal(h.host); got != h.stays {
			t.Errorf("PlainHTTPStaysLocal(%q) = %v, want %v", h.host, got, h.stays)
		}
	}
}

// TestFromURL: the functions get what url.URL.Hostname returns for the
// URLs a user writes.
func TestFromURL(t *testing.T) {
	for _, c := range []struct {
		url           string
		secure, stays bool
	}{
		{"http://localhost:8080/cb", true, true},
		{"http://LOCALHOST/cb", true, true},
		{"http://app.localhost:8080/cb", true, false},
		{"http://127.0.0.1:8080/cb", true, true},
		{"http://[::1]:8080/cb", true, true},
		{"http://[::ffff:127.0.0.1]:8080/cb", false, true},
		{"http://[::1%25lo]:8080/cb", false, false},
		{"http://localhost.:8080/cb", false, false},
		{"http://127.1:8080/cb", false, false},
		{"http://0.0.0.0:8080/cb", false, false},
		{"http://user@evil.example:8080/@localhost", false, false},
		{"http://localhost@evil.example/", false, false},
		{"http://evil.example#@localhost", false, false},
		{"http:///cb", false, false},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		if got := BrowserSecureContext(u.Hostname()); got != c.secure {
			t.Errorf("BrowserSecureContext(Hostname of %s) = %v, want %v", c.url, got, c.secure)
		}
		if got := PlainHTTPStaysLocal(u.Hostname()); got != c.stays {
			t.Errorf("PlainHTTPStaysLocal(Hostname of %s) = %v, want %v", c.url, got, c.stays)
		}
	}
}

// TestStaysLocalLiteralsDialLoopback: every IP literal PlainHTTPStaysLocal
// accepts is one Go's dialer connects to a loopback listener with, without
// a resolver: a real listener on 127.0.0.1 (and ::1 when the machine has
// it) receives the connection.
func TestStaysLocalLiteralsDialLoopback(t *testing.T) {
	ln4, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln4.Close()
	_, port, _ := net.SplitHostPort(ln4.Addr().String())
	ln6, err6 := net.Listen("tcp", net.JoinHostPort("::1", port))
	if err6 == nil {
		defer ln6.Close()
	}
	dialed := 0
	for _, h := range hosts {
		if !h.stays || h.host == "localhost" || !PlainHTTPStaysLocal(h.host) {
			continue
		}
		ip := net.ParseIP(unbracket(h.host))
		if ip == nil {
			if _, ok := literal(unbracket(h.host)); ok {
				t.Errorf("%q: a literal for netip but not for net", h.host)
			}
			continue // a name (LOCALHOST …)
		}
		if ip.To4() == nil && err6 != nil {
			continue // no IPv6 loopback here; ::1 is loopback by definition
		}
		if ip.To4() != nil && !ip.To4().Equal(net.IPv4(127, 0, 0, 1)) {
			continue // 127.0.0.2…: loopback on Linux, not bound here
		}
		c, err := net.Dial("tcp", net.JoinHostPort(unbracket(h.host), port))
		if err != nil {
			t.Errorf("dial %s: %v", h.host, err)
			continue
		}
		if !c.RemoteAddr().(*net.TCPAddr).IP.IsLoopback() {
			t.Errorf("dial %s reached %s", h.host, c.RemoteAddr())
		}
		c.Close()
		dialed++
	}
	if dialed < 4 { // 127.0.0.1 and three mapped forms at least
		t.Errorf("dialed %d literals", dialed)
	}
}

// TestLoopbackOnly: a dialer with LoopbackOnly connects to a real loopback
// listener and refuses, before any packet, an address elsewhere.
func TestLoopbackOnly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: LoopbackOnly}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("loopback refused: %v", err)
	}
	c.Close()
	for _, addr := range []string{"192.0.2.1:9", "[2001:db8::1]:9", "0.0.0.0:9", "[::]:9", "[::ffff:192.0.2.1]:9"} {
		c, err := d.Dial("tcp", addr)
		if err == nil {
			c.Close()
			t.Errorf("dialed %s", addr)
		} else if !errors.Is(err, ErrNotLoopback) {
			t.Errorf("dial %s: %v, want ErrNotLoopback", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1", "::1", "[::1]", "localhost:80", "[::1%lo]:80"} {
		if LoopbackOnly("tcp", addr, nil) == nil {
			t.Errorf("LoopbackOnly(%q) = nil", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:80", "127.9.9.9:1", "[::1]:80", "[::ffff:127.0.0.1]:80"} {
		if err := LoopbackOnly("tcp", addr, nil); err != nil {
			t.Errorf("LoopbackOnly(%q) = %v", addr, err)
		}
	}
}

func TestIsDNSName(t *testing.T) {
	for _, s := range []string{"a", "localhost", "App.Example", "my_app.dev-1.example", strings.Repeat("a", 63) + ".b"} {
		if !IsDNSName(s) {
			t.Errorf("IsDNSName(%q) = false", s)
		}
	}
	for _, s := range []string{"", ".", "a.", ".a", "a..b", "a b", "a/b", "a:1", "127.0.0.1:80", "*.example", "é.example", "a%2e", strings.Repeat("a", 64), strings.Repeat("a.", 127) + "a"} {
		if IsDNSName(s) {
			t.Errorf("IsDNSName(%q) = true", s)
		}
	}
}

func FuzzHosts(f *testing.F) {
	for _, h := range hosts {
		f.Add(h.host)
	}
	f.Fuzz(func(t *testing.T, host string) {
		stays := PlainHTTPStaysLocal(host)
		secure := BrowserSecureContext(host)
		// What stays local is a loopback literal or "localhost"; a
		// secure context that is not local is a name under .localhost.
		if stays {
			if ip, ok := literal(unbracket(host)); ok {
				if !ip.Unmap().IsLoopback() {
					t.Fatalf("%q stays local but is not loopback", host)
				}
			} else if len(host) != len("localhost") {
				t.Fatalf("%q stays local but is neither a literal nor localhost", host)
			}
		}
		if secure && !stays {
			if _, ok := literal(unbracket(host)); ok {
				t.Fatalf("%q: a secure-context literal that does not stay local", host)
			}
		}
	})
}

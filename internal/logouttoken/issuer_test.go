package logouttoken

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// discoveryServer answers every GET …/.well-known/openid-configuration
// with the issuer docIssuer(base) and records the paths asked.
func discoveryServer(t *testing.T, docIssuer func(base string) string) (base string, paths func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		if !strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
			http.NotFound(w, r)
			return
		}
		iss := docIssuer(srv.URL)
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": strings.TrimSuffix(iss, "/") + "/jwks"})
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

// TestDiscoverIssuer: the issuer is the discovery document's, exactly, when
// it names op_host (+ op_discovery_path) up to trailing slashes, in both
// directions (op_host with a slash and the issuer without, and the
// reverse); any other difference (case of the host or scheme, a port, a
// path, another scheme) is refused.
func TestDiscoverIssuer(t *testing.T) {
	for _, tc := range []struct {
		name           string
		doc            func(b string) string
		opHost, path   func(b string) string
		want           func(b string) string
		wantPathPrefix string
	}{
		{"Same", func(b string) string { return b }, func(b string) string { return b }, nil, func(b string) string { return b }, "/"},
		{"OPHostSlashIssuerNot", func(b string) string { return b }, func(b string) string { return b + "/" }, nil, func(b string) string { return b }, "/"},
		{"IssuerSlashOPHostNot", func(b string) string { return b + "/" }, func(b string) string { return b }, nil, func(b string) string { return b + "/" }, "/"},
		{"BothSlash", func(b string) string { return b + "/" }, func(b string) string { return b + "/" }, nil, func(b string) string { return b + "/" }, "/"},
		{"DiscoveryPath", func(b string) string { return b + "/realms/x" }, func(b string) string { return b + "/" }, func(string) string { return "/realms/x/" }, func(b string) string { return b + "/realms/x" }, "/realms/x/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, paths := discoveryServer(t, tc.doc)
			path := ""
			if tc.path != nil {
				path = tc.path(base)
			}
			got, err := DiscoverIssuer(bg, nil, tc.opHost(base), path)
			if err != nil || got != tc.want(base) {
				t.Fatalf("DiscoverIssuer = %q, %v; want %q", got, err, tc.want(base))
			}
			if p := paths(); len(p) != 1 || p[0] != tc.wantPathPrefix+".well-known/openid-configuration" {
				t.Fatalf("asked %q", p)
			}
		})
	}
	refused := map[string]func(b string) string{
		"HostCase":      func(b string) string { return strings.Replace(b, "127.0.0.1", "LOCALHOST", 1) },
		"OtherHost":     func(b string) string { return strings.Replace(b, "127.0.0.1", "localhost", 1) },
		"SchemeCase":    func(b string) string { return strings.Replace(b, "http://", "HTTP://", 1) },
		"OtherScheme":   func(b string) string { return strings.Replace(b, "http://", "https://", 1) },
		"OtherPath":     func(b string) string { return b + "/other" },
		"OtherPort":     func(b string) string { u, _ := url.Parse(b); return "http://" + u.Hostname() + ":1" },
		"DefaultPort":   func(b string) string { u, _ := url.Parse(b); return "http://" + u.Hostname() + ":80" },
		"NoIssuer":      func(string) string { return "" },
		"QueryAppended": func(b string) string { return b + "?x=1" },
	}
	for name, doc := range refused {
		t.Run("Refused"+name, func(t *testing.T) {
			base, _ := discoveryServer(t, doc)
			if got, err := DiscoverIssuer(bg, nil, base, ""); !errors.Is(err, ErrKeysUnavailable) {
				t.Fatalf("DiscoverIssuer with issuer %q = %q, %v; want ErrKeysUnavailable", doc(base), got, err)
			}
		})
	}
	t.Run("PlainHTTPOffLoopbackRefused", func(t *testing.T) {
		if _, err := DiscoverIssuer(bg, nil, "http://op.example.com", ""); !errors.Is(err, ErrKeysUnavailable) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestIssuerExactMatchClass: iss must equal the configured issuer byte for
// byte; every other spelling of "the same" URL is another issuer (OIDC
// Core §3.1.3.7, Back-Channel Logout §2.6), in both directions of a
// trailing slash.
func TestIssuerExactMatchClass(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	for _, issuer := range []string{"https://op.example.com", "https://op.example.com/", "https://op.example.com/tenant"} {
		v := newValidator(t, op, nil, func(c *Config) { c.Issuer = issuer; c.JWKSURL = op.issuer + "/jwks" })
		cl := op.claims()
		cl["iss"] = issuer
		expectAccepted(t, v, sign(t, k, "JWT", cl))
		u, _ := url.Parse(issuer)
		for _, wrong := range []string{
			strings.TrimSuffix(issuer, "/"),
			strings.TrimSuffix(issuer, "/") + "/",
			strings.Replace(issuer, "op.example.com", "OP.example.com", 1),
			strings.Replace(issuer, "https://", "HTTPS://", 1),
			strings.Replace(issuer, "op.example.com", "op.example.com:443", 1),
			strings.Replace(issuer, "https://", "http://", 1),
			"https://" + u.Host + "/other",
			issuer + "#",
			issuer + "?",
			" " + issuer,
		} {
			if wrong == issuer {
				continue
			}
			cl := op.claims()
			cl["iss"] = wrong
			expectRefused(t, v, sign(t, k, "JWT", cl), ErrIssuer)
		}
	}
}

// TestFrontChannelIssuerExactMatch: the front-channel handler compares
// iss exactly too: op_host's or any other spelling of the issuer ends
// nothing.
func TestFrontChannelIssuerExactMatch(t *testing.T) {
	for _, issuer := range []string{"https://op.example.com", "https://op.example.com/"} {
		idx := &recIndex{}
		h, err := FrontChannelHandler(issuer, idx, idx.destroy, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, wrong := range []string{
			strings.TrimSuffix(issuer, "/"), strings.TrimSuffix(issuer, "/") + "/",
			"https://OP.example.com", "https://op.example.com:443", "http://op.example.com", "https://op.example.com/x",
		} {
			if wrong == issuer {
				continue
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/fc?"+url.Values{"iss": {wrong}, "sid": {"s1"}}.Encode(), nil))
			if rec.Code != http.StatusBadRequest || idx.lookups() != 0 {
				t.Fatalf("issuer %q, iss %q: %d, %d lookups; want 400 and none", issuer, wrong, rec.Code, idx.lookups())
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/fc?"+url.Values{"iss": {issuer}, "sid": {"s1"}}.Encode(), nil))
		if rec.Code != http.StatusOK || idx.lookups() != 1 {
			t.Fatalf("issuer %q with its own iss: %d, %d lookups", issuer, rec.Code, idx.lookups())
		}
	}
}

// recIndex is an Index that holds nothing and counts lookups.
type recIndex struct {
	mu sync.Mutex
	n  int
}

func (x *recIndex) BySID(context.Context, string, string) ([]string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.n++
	return nil, nil
}

func (x *recIndex) BySubject(context.Context, string, string) ([]string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.n++
	return nil, nil
}

func (x *recIndex) Remove(context.Context, string) error  { return nil }
func (x *recIndex) destroy(context.Context, string) error { return nil }
func (x *recIndex) lookups() int                          { x.mu.Lock(); defer x.mu.Unlock(); return x.n }

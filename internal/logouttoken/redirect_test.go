package logouttoken

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestNoRedirectDowngradeToPlainHTTP: an https OP whose discovery document
// or JWKS answers with a redirect to plain http (on loopback, which plain
// http is otherwise allowed for) does not get them fetched in clear:
// whoever holds that port would choose the issuer's document or the keys
// logout tokens are checked with. Also with the caller's HTTP client.
func TestNoRedirectDowngradeToPlainHTTP(t *testing.T) {
	k := newRSAKey("k1", 0)
	var plainHits atomic.Int32
	var op *httptest.Server
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		if r.URL.Path == "/jwks" {
			_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.public()}})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": op.URL, "jwks_uri": op.URL + "/jwks"})
	}))
	defer plain.Close()
	redirectDiscovery := atomic.Bool{}
	op = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/jwks":
			http.Redirect(w, r, plain.URL+"/jwks", http.StatusFound)
		case redirectDiscovery.Load():
			http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusMovedPermanently)
		default:
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": op.URL, "jwks_uri": op.URL + "/jwks"})
		}
	}))
	defer op.Close()

	if err := validateAt(t, op, k); !errors.Is(err, ErrKeysUnavailable) || plainHits.Load() != 0 {
		t.Fatalf("JWKS redirect: err %v, %d requests in clear", err, plainHits.Load())
	}

	redirectDiscovery.Store(true)
	if _, err := DiscoverIssuer(bg, op.Client(), op.URL, ""); !errors.Is(err, ErrKeysUnavailable) || plainHits.Load() != 0 {
		t.Fatalf("discovery redirect: err %v, %d requests in clear", err, plainHits.Load())
	}
	// Control: without the redirect, the document is read.
	redirectDiscovery.Store(false)
	if got, err := DiscoverIssuer(bg, op.Client(), op.URL, ""); err != nil || got != op.URL {
		t.Fatalf("control: %q %v", got, err)
	}

	// A plain-http development OP on loopback: a redirect to a URL with
	// user info (or off loopback) is refused before any request.
	dev := httptest.NewServer(http.RedirectHandler("http://user:pw@127.0.0.1:1/.well-known/openid-configuration", http.StatusFound))
	defer dev.Close()
	if _, err := DiscoverIssuer(bg, nil, dev.URL, ""); !errors.Is(err, ErrKeysUnavailable) || !strings.Contains(err.Error(), "redirect: not an absolute URL") {
		t.Fatalf("redirect to a refused URL: %v", err)
	}
}

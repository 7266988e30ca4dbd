package oxd

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/oxdclient"
)

// TestPendingLoginCookieAttributes: one cookie per pending login,
// __Host- prefixed, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain,
// Max-Age PendingLoginTTL; no session cookie.
func TestPendingLoginCookieAttributes(t *testing.T) {
	rg := newRig(t, rigOpts{})
	r := rg.get(rg.browser(), "/private/x")
	if r.status != http.StatusSeeOther {
		t.Fatalf("%d", r.status)
	}
	res := http.Response{Header: r.header}
	cks := res.Cookies()
	if len(cks) != 1 {
		t.Fatalf("cookies %v", cks)
	}
	c := cks[0]
	if !strings.HasPrefix(c.Name, "__Host-oxd-login-") || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode ||
		c.Path != "/" || c.Domain != "" || c.MaxAge != int(DefaultPendingLoginTTL/time.Second) {
		t.Fatalf("cookie %+v", c)
	}
	if strings.Contains(c.Value, "/private/x") {
		t.Fatal("the return-to is readable in the cookie")
	}
}

// TestPendingLoginCookieTampering: a pending-login cookie is accepted only
// unchanged, under its own state's name, for its own site and key.
func TestPendingLoginCookieTampering(t *testing.T) {
	key := []byte("0123456789abcdef0123456789ABCDEF")
	mk := func(site string, k []byte) *pendingCodec {
		cfg := Config{PendingLoginKey: k, PendingLoginTTL: time.Minute, PendingLoginLimit: 8}
		c, err := newPendingCodec(&cfg, site, scs.New().Store)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := mk("site-1", key)
	p := pendingLogin{State: "state-1", ReturnTo: "/a?b=c", Created: time.Now().Round(0), Restarts: 1}
	v := c.seal(p)
	got, ok := c.open(c.name("state-1"), v)
	if !ok || got.State != p.State || got.ReturnTo != p.ReturnTo || !got.Created.Equal(p.Created) || got.Restarts != 1 {
		t.Fatalf("round trip: %v %+v", ok, got)
	}
	if _, ok := c.open(c.name("state-2"), v); ok {
		t.Fatal("a value moved to another state's cookie was accepted")
	}
	if _, ok := mk("site-2", key).open(c.name("state-1"), v); ok {
		t.Fatal("another site accepted the value")
	}
	other := []byte("ABCDEF0123456789abcdef0123456789")
	if _, ok := mk("site-1", other).open(c.name("state-1"), v); ok {
		t.Fatal("another key accepted the value")
	}
	for i := range len(v) {
		b := []byte(v)
		b[i] ^= 1
		if _, ok := c.open(c.name("state-1"), string(b)); ok {
			t.Fatalf("a value altered at byte %d was accepted", i)
		}
	}
	for _, bad := range []string{"", "spent", "AAAA", strings.Repeat("A", 5000)} {
		if _, ok := c.open(c.name("state-1"), bad); ok {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// TestPendingLoginKeyRequired: without a key New refuses a session store
// other than scs's in-memory store (replicas could not open each other's
// cookies); keys of the wrong size or of one repeated byte are refused.
func TestPendingLoginKeyRequired(t *testing.T) {
	client := oxdclient.New(newFakeOxd(), oxdclient.Config{})
	base := Config{OxdID: "x", PostLogoutRedirectURI: "https://app.example/"}
	shared := scs.New()
	shared.Store = &otherStore{Store: shared.Store}
	if _, err := New(client, shared, base); !errors.Is(err, errPendingKeyRequired) {
		t.Fatalf("shared store without key: %v", err)
	}
	withKey := base
	withKey.PendingLoginKey = []byte("0123456789abcdef0123456789ABCDEF")
	if _, err := New(client, shared, withKey); err != nil {
		t.Fatal(err)
	}
	if _, err := New(client, scs.New(), base); err != nil {
		t.Fatalf("memory store without key: %v", err)
	}
	for _, k := range [][]byte{[]byte("short"), make([]byte, 32), []byte(strings.Repeat("k", 32)), make([]byte, 64)} {
		c := base
		c.PendingLoginKey = k
		if _, err := New(client, scs.New(), c); err == nil {
			t.Fatalf("key %q accepted", k)
		}
	}
}

type otherStore struct{ scs.Store }

// TestPendingLoginCookiesBounded: however many logins a browser starts, it
// holds at most PendingLoginLimit pending-login cookies and about 8 KiB of
// them; stale, foreign and unreadable ones are removed.
func TestPendingLoginCookiesBounded(t *testing.T) {
	rg := newRig(t, rigOpts{})
	b := rg.browser()
	long := "/private/" + strings.Repeat("p", 900)
	for range 30 {
		rg.startLogin(b, long)
	}
	u := httptest.NewRequest("GET", rg.srv.URL, nil).URL
	n, size := 0, 0
	for _, c := range b.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, pendingCookieSecurePrefix) {
			n++
			size += len(c.Value)
		}
	}
	if n == 0 || n > DefaultPendingLoginLimit || size > maxPendingCookieBytes {
		t.Fatalf("%d pending-login cookies, %d bytes", n, size)
	}
	// A request URI too long for the cookie returns to DefaultReturnTo.
	st := rg.startLogin(b, "/private/"+strings.Repeat("q", maxPendingReturnTo))
	if r := rg.finish(b, st, "alice"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		t.Fatalf("%d %q", r.status, r.header.Get("Location"))
	}
	// Garbage under the prefix is removed when a login starts.
	req := httptest.NewRequest("GET", "https://app.example/private/", nil)
	req.AddCookie(&http.Cookie{Name: pendingCookieSecurePrefix + "junk", Value: "zzz"})
	w := httptest.NewRecorder()
	rg.sm.LoadAndSave(rg.auth.RequireLogin(http.NotFoundHandler())).ServeHTTP(w, req)
	removed := false
	for _, c := range w.Result().Cookies() {
		if c.Name == pendingCookieSecurePrefix+"junk" && c.MaxAge < 0 {
			removed = true
		}
	}
	if !removed {
		t.Fatal("unreadable pending-login cookie kept")
	}
}

package oxd

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/sessionindex"
)

const fakeIssuer = "https://op.example"

func hashed(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// TestLoginRecordsSessionInIndex: a login adds its store key (the token,
// or its hash with HashTokenInStore, as scs addresses the store) under the
// ID token's issuer and subject; logout removes it.
func TestLoginRecordsSessionInIndex(t *testing.T) {
	for _, hash := range []bool{false, true} {
		idx := sessionindex.NewMemory(sessionindex.MemoryOptions{})
		rg := newRig(t, rigOpts{
			cfg: func(c *Config) { c.SessionIndex = idx },
			sm:  func(sm *scs.SessionManager) { sm.HashTokenInStore = hash },
		})
		b := rg.browser()
		rg.login(b, "/private/", "alice")
		want := rg.sessionCookie(b)
		if hash {
			want = hashed(want)
		}
		keys, err := idx.BySubject(context.Background(), fakeIssuer, "alice")
		if err != nil || len(keys) != 1 || keys[0] != want {
			t.Fatalf("hash=%v: index holds %q, %v; want [%q]", hash, keys, err, want)
		}
		// The key is the one the store holds.
		if _, found, _ := rg.sm.Store.Find(keys[0]); !found {
			t.Fatalf("hash=%v: the store has no session under the indexed key", hash)
		}
		rg.do(b, "POST", "/logout", map[string]string{"Sec-Fetch-Site": "same-origin"})
		if keys, _ := idx.BySubject(context.Background(), fakeIssuer, "alice"); len(keys) != 0 {
			t.Fatalf("hash=%v: index still holds %q after logout", hash, keys)
		}
	}
}

// TestLogoutAllSessions: with LogoutAllSessions, logging out in one
// browser ends the user's other sessions; another user's stays.
func TestLogoutAllSessions(t *testing.T) {
	for _, all := range []bool{false, true} {
		idx := sessionindex.NewMemory(sessionindex.MemoryOptions{})
		rg := newRig(t, rigOpts{cfg: func(c *Config) { c.SessionIndex = idx; c.LogoutAllSessions = all }})
		a1, a2, bob := rg.browser(), rg.browser(), rg.browser()
		rg.login(a1, "/private/", "alice")
		rg.login(a2, "/private/", "alice")
		rg.login(bob, "/private/", "bob")
		if r := rg.do(a1, "POST", "/logout", map[string]string{"Sec-Fetch-Site": "same-origin"}); r.status != http.StatusSeeOther {
			t.Fatalf("logout: %d", r.status)
		}
		if r := rg.get(a1, "/private/"); r.status != http.StatusSeeOther {
			t.Fatal("the logged-out browser is still signed in")
		}
		r := rg.get(a2, "/private/")
		if all && r.status != http.StatusSeeOther {
			t.Fatal("LogoutAllSessions: alice's other session survived")
		}
		if !all && r.status != http.StatusOK {
			t.Fatalf("without LogoutAllSessions alice's other session ended: %d", r.status)
		}
		if r := rg.get(bob, "/private/"); r.status != http.StatusOK {
			t.Fatalf("all=%v: bob's session ended: %d", all, r.status)
		}
	}
}

// TestIndexEvictionEndsSession: beyond the per-subject cap the evicted
// session is ended in the store, so no live session is out of the index's
// reach.
func TestIndexEvictionEndsSession(t *testing.T) {
	idx := sessionindex.NewMemory(sessionindex.MemoryOptions{MaxPerSubject: 2})
	rg := newRig(t, rigOpts{cfg: func(c *Config) { c.SessionIndex = idx }})
	var bs []*http.Client
	for range 3 {
		b := rg.browser()
		rg.login(b, "/private/", "alice")
		bs = append(bs, b)
		rg.advance(time.Second) // later logins expire later
	}
	live := 0
	for _, b := range bs {
		if rg.get(b, "/private/").status == http.StatusOK {
			live++
		}
	}
	keys, _ := idx.BySubject(context.Background(), fakeIssuer, "alice")
	if live != 2 || len(keys) != 2 {
		t.Fatalf("%d live sessions, %d indexed; want 2 and 2", live, len(keys))
	}
	if rg.get(bs[0], "/private/").status == http.StatusOK {
		t.Fatal("the oldest session survived its eviction")
	}
}

type failingIndex struct{ SessionIndex }

func (failingIndex) Add(context.Context, sessionindex.Entry) ([]string, error) {
	return nil, errors.New("index down")
}

// TestLoginFailsWhenIndexFails: a session the index could not record is
// not let live.
func TestLoginFailsWhenIndexFails(t *testing.T) {
	rg := newRig(t, rigOpts{cfg: func(c *Config) { c.SessionIndex = failingIndex{sessionindex.NewMemory(sessionindex.MemoryOptions{})} }})
	b := rg.browser()
	r := rg.login(b, "/private/", "alice")
	if r.status != http.StatusInternalServerError || !errors.Is(rg.lastErr(), ErrSession) {
		t.Fatalf("login with a failing index: %d %v", r.status, rg.lastErr())
	}
	if r := rg.get(b, "/private/"); r.status != http.StatusSeeOther {
		t.Fatal("signed in although the index refused the session")
	}
}

// TestChannelHandlersWithoutIndex: without Config.SessionIndex both
// logout endpoints answer 501, never a redirect.
func TestChannelHandlersWithoutIndex(t *testing.T) {
	rg := newRig(t, rigOpts{})
	for name, h := range map[string]http.Handler{
		"back":  rg.auth.BackChannelLogoutHandler(),
		"front": rg.auth.FrontChannelLogoutHandler(),
	} {
		w := httptest.NewRecorder()
		method := http.MethodPost
		if name == "front" {
			method = http.MethodGet
		}
		h.ServeHTTP(w, httptest.NewRequest(method, "/x?iss=a&sid=b", nil))
		if w.Code != http.StatusNotImplemented || w.Header().Get("Location") != "" ||
			!slices.Contains(w.Header().Values("Cache-Control"), "no-store") {
			t.Fatalf("%s: %d %v", name, w.Code, w.Header())
		}
	}
}

// TestBackChannelWhenSiteUnknown: when the site's issuer and client_id
// cannot be read from oxd (get_rp fails), the back-channel endpoint
// answers 400 server_error (no redirect, no-store), and the failure is
// not retried on every request.
func TestBackChannelWhenSiteUnknown(t *testing.T) {
	rg := newRig(t, rigOpts{cfg: func(c *Config) { c.SessionIndex = sessionindex.NewMemory(sessionindex.MemoryOptions{}) }})
	h := rg.auth.BackChannelLogoutHandler()
	for range 3 {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/logout/backchannel", strings.NewReader("logout_token=x.y.z"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" || w.Header().Get("Cache-Control") != "no-store" ||
			!strings.Contains(w.Body.String(), `"server_error"`) {
			t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
		}
	}
	if n := rg.fake.count("get_rp"); n != 1 {
		t.Fatalf("get_rp called %d times in a burst, want 1 (retried at most every %v)", n, channelRetry)
	}
}

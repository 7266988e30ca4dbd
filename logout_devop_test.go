package oxd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/oxdtest"
	"github.com/oxdgo/oxd/sessionindex/redisindex"
)

// replicaSet is two application replicas sharing a Redis session store
// and a Redis session index, signed in through the development OP.
type replicaSet struct {
	t      *testing.T
	srv    *oxdtest.Server
	apps   [2]*httptest.Server
	auths  [2]*Auth
	errs   atomic.Pointer[error]
	client *http.Client // trusts the replicas' TLS

	// holdLoaded and holdRelease, when set, make GET /private/hold
	// signal that it has loaded the session, wait, then change the
	// session (a request in flight during a logout).
	holdLoaded, holdRelease chan struct{}
}

func newReplicaSet(t *testing.T, opCfg oxdtest.OPConfig, back, front bool, cfg func(*Config), opts ...oxdtest.ServerOption) *replicaSet {
	t.Helper()
	rs := &replicaSet{t: t}
	rd := redistest.Start(t)
	store := goredisstore.New(rd.Client(t))
	idx, err := redisindex.New(rd.Client(t), redisindex.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var handlers [2]atomic.Pointer[http.Handler]
	for i := range rs.apps {
		rs.apps[i] = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			(*handlers[i].Load()).ServeHTTP(w, r)
		}))
		rs.apps[i].Config.ErrorLog = log.New(io.Discard, "", 0)
		rs.apps[i].StartTLS()
		t.Cleanup(rs.apps[i].Close)
	}
	rs.client = rs.apps[0].Client()
	opCfg.LogoutHTTPClient = rs.client
	a0 := rs.apps[0].URL
	var backURI, frontURI string
	if back {
		backURI = a0 + "/logout/backchannel"
	}
	if front {
		frontURI = a0 + "/logout/frontchannel"
	}
	rs.srv = oxdtest.NewServer(t, append([]oxdtest.ServerOption{
		oxdtest.WithOPConfig(opCfg),
		oxdtest.WithRedirectURIs(a0+"/callback", a0+"/logged-out", ""),
		oxdtest.WithLogoutURIs(backURI, frontURI)}, opts...)...)
	for i := range rs.apps {
		sm := scs.New()
		sm.Store = store
		sm.HashTokenInStore = true // the index holds hashes, as the store
		c := Config{
			OxdID:                 rs.srv.OxdID,
			PostLogoutRedirectURI: a0 + "/logged-out",
			SessionIndex:          idx,
			PendingLoginKey:       testPendingKey, // replicas share the pending-login cookie key
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, status int, err error) {
				rs.errs.Store(&err)
				http.Error(w, err.Error(), status)
			},
		}
		if cfg != nil {
			cfg(&c)
		}
		a, err := New(rs.srv.Client, sm, c)
		if err != nil {
			t.Fatal(err)
		}
		rs.auths[i] = a
		mux := http.NewServeMux()
		mux.Handle("/private/", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, _ := UserFrom(r.Context())
			fmt.Fprintf(w, "sub=%s|replica=%d", u.Subject, i)
		})))
		mux.Handle("/private/hold", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(rs.holdLoaded)
			<-rs.holdRelease
			sm.Put(r.Context(), "app.visits", 2)
			io.WriteString(w, "held")
		})))
		mux.Handle("GET /callback", a.CallbackHandler())
		mux.Handle("/logout", a.LogoutHandler())
		mux.Handle("/logout/backchannel", a.BackChannelLogoutHandler())
		mux.Handle("/logout/frontchannel", a.FrontChannelLogoutHandler())
		mux.HandleFunc("/logged-out", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "bye") })
		h := sm.LoadAndSave(mux)
		handlers[i].Store(&h)
	}
	return rs
}

func (rs *replicaSet) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: rs.client.Transport, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (rs *replicaSet) do(b *http.Client, method, target string, form url.Values) (int, http.Header, string) {
	rs.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		rs.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := b.Do(req)
	if err != nil {
		rs.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	b2, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b2)
}

// login signs b in on replica i (at the OP with user's password, or with
// the OP session b already has when pass is "").
func (rs *replicaSet) login(b *http.Client, i int, user, pass string) {
	rs.t.Helper()
	app := rs.apps[i].URL
	st, h, _ := rs.do(b, "GET", app+"/private/x", nil)
	if st != http.StatusSeeOther {
		rs.t.Fatalf("GET /private/x on %d: %d", i, st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cb, err := oxdtest.BrowserLogin(ctx, b, h.Get("Location"), user, pass)
	if err != nil {
		rs.t.Fatalf("OP login: %v", err)
	}
	// The OP redirects to replica 0's callback; the browser goes to
	// replica i (host-only cookies on 127.0.0.1 go to both ports).
	if st, h, body := rs.do(b, "GET", app+cb.RequestURI(), nil); st != http.StatusSeeOther || h.Get("Location") != "/private/x" {
		rs.t.Fatalf("callback on %d: %d %s", i, st, body)
	}
	rs.expect(b, i, user)
}

// expect checks that b is signed in as user on replica i ("" anonymous).
func (rs *replicaSet) expect(b *http.Client, i int, user string) {
	rs.t.Helper()
	if got := rs.who(b, i); got != user {
		var last error
		if e := rs.errs.Load(); e != nil {
			last = *e
		}
		rs.t.Fatalf("replica %d: signed in as %q, want %q (last error: %v)", i, got, user, last)
	}
}

func (rs *replicaSet) who(b *http.Client, i int) string {
	st, _, body := rs.do(b, "GET", rs.apps[i].URL+"/private/x", nil)
	if st != http.StatusOK {
		return ""
	}
	s, _, _ := strings.Cut(strings.TrimPrefix(body, "sub="), "|")
	return s
}

// waitAnonymous waits up to d until b is anonymous on both replicas, and
// fails the test with why otherwise.
func (rs *replicaSet) waitAnonymous(b *http.Client, d time.Duration, why string) {
	rs.t.Helper()
	deadline := time.Now().Add(d)
	for rs.who(b, 0) != "" || rs.who(b, 1) != "" {
		if time.Now().After(deadline) {
			rs.t.Fatal(why)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// shareOPSession copies from's cookies at the OP into a new browser: a
// second browser session of the same OP session.
func (rs *replicaSet) shareOPSession(from *http.Client) *http.Client {
	b := rs.browser()
	u, _ := url.Parse(rs.srv.OP.Issuer())
	var op []*http.Cookie
	for _, c := range from.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "oxdtest_") {
			op = append(op, c)
		}
	}
	b.Jar.SetCookies(u, op)
	return b
}

var xsrfField = regexp.MustCompile(`name="xsrf" value="([^"]+)"`)

// opLogout signs b out at the OP's end_session page (no id_token_hint:
// the user confirms), as a user does at the OP itself.
func (rs *replicaSet) opLogout(b *http.Client) string {
	rs.t.Helper()
	end := rs.srv.OP.Issuer() + "/end_session"
	st, _, body := rs.do(b, "GET", end, nil)
	m := xsrfField.FindStringSubmatch(body)
	if st != http.StatusOK || m == nil {
		rs.t.Fatalf("end_session: %d %s", st, body)
	}
	_, _, body = rs.do(b, "POST", end, url.Values{"xsrf": {m[1]}})
	return body
}

// TestBackChannelLogoutAcrossReplicas: two browser sessions of alice's one
// OP session (one signed in through each replica, both valid on both, the
// replicas sharing Redis for sessions and index), and bob's session. Alice
// signs out at the OP; the OP's back-channel logout reaches replica 0 only,
// and both of alice's sessions are anonymous on both replicas at once;
// bob's is untouched. A replayed logout token is refused.
func TestBackChannelLogoutAcrossReplicas(t *testing.T) {
	rs := newReplicaSet(t, oxdtest.OPConfig{}, true, false, nil)
	alice1 := rs.browser()
	rs.login(alice1, 0, "alice", "alice-password")
	alice2 := rs.shareOPSession(alice1)
	rs.login(alice2, 1, "alice", "")
	bob := rs.browser()
	rs.login(bob, 1, "bob", "bob-password")
	for i := range 2 {
		rs.expect(alice1, i, "alice")
		rs.expect(alice2, i, "alice")
	}

	start := time.Now()
	rs.opLogout(alice1)
	sentAt := time.Since(start)
	deadline := start.Add(time.Second)
	for {
		anon := true
		for i := range 2 {
			for _, b := range []*http.Client{alice1, alice2} {
				anon = anon && rs.who(b, i) == ""
			}
		}
		if anon {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice is still signed in one second after signing out at the OP")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("OP end_session answered (back-channel sent) in %v; all of alice's sessions anonymous on both replicas after %v", sentAt, time.Since(start))
	if rs.srv.OP.BackChannelLogoutsSent() < 1 {
		t.Fatal("the OP sent no back-channel logout")
	}
	for i := range 2 {
		rs.expect(bob, i, "bob")
	}
}

// TestFrontChannelLogoutAcrossReplicas: the OP's end_session page frames
// the front-channel logout URL (iss, sid); loading it (as the browser's
// iframe does) ends every session of the OP session on both replicas.
func TestFrontChannelLogoutAcrossReplicas(t *testing.T) {
	rs := newReplicaSet(t, oxdtest.OPConfig{}, false, true, nil)
	alice := rs.browser()
	rs.login(alice, 1, "alice", "alice-password")
	bob := rs.browser()
	rs.login(bob, 0, "bob", "bob-password")
	// Only front-channel is registered: until the browser loads the
	// frame, alice is still signed in; loading it (as the iframe does)
	// ends her sessions.
	page := rs.opLogout(alice)
	rs.expect(alice, 0, "alice")
	m := regexp.MustCompile(`<iframe src="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("end_session page has no front-channel iframe: %s", page)
	}
	src := strings.ReplaceAll(m[1], "&amp;", "&")
	st, h, _ := rs.do(rs.browser(), "GET", src, nil)
	if st != http.StatusOK || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors "+strings.TrimSuffix(rs.srv.OP.Issuer(), "/")) {
		t.Fatalf("front-channel: %d %v", st, h)
	}
	for i := range 2 {
		rs.expect(alice, i, "")
		rs.expect(bob, i, "bob")
	}
}

// TestLogoutWithoutEndSessionAtDevOP: at an OP without
// end_session_endpoint the logout is local only and says so
// (ErrLocalLogoutOnly, status 200); the session is gone on both replicas.
func TestLogoutWithoutEndSessionAtDevOP(t *testing.T) {
	rs := newReplicaSet(t, oxdtest.OPConfig{DisableEndSession: true}, false, false, nil)
	alice := rs.browser()
	rs.login(alice, 0, "alice", "alice-password")
	st, h, _ := rs.do(alice, "POST", rs.apps[1].URL+"/logout", url.Values{})
	e := rs.errs.Load()
	if st != http.StatusOK || h.Get("Location") != "" || e == nil || !errors.Is(*e, ErrLocalLogoutOnly) {
		t.Fatalf("logout: %d %q %v", st, h.Get("Location"), e)
	}
	for i := range 2 {
		rs.expect(alice, i, "")
	}
}

// TestLogoutWithoutPostLogoutURI: without Config.PostLogoutRedirectURI
// the middleware sends none; the logout goes to the OP's end_session with
// id_token_hint (the engine adds the site's registered
// post_logout_redirect_uri, if any, as oxd 3.1.4 does), the OP ends its
// session, and the application's session is gone on both replicas.
func TestLogoutWithoutPostLogoutURI(t *testing.T) {
	rs := newReplicaSet(t, oxdtest.OPConfig{}, false, false, func(c *Config) { c.PostLogoutRedirectURI = "" })
	alice := rs.browser()
	rs.login(alice, 0, "alice", "alice-password")
	st, h, _ := rs.do(alice, "POST", rs.apps[0].URL+"/logout", url.Values{})
	loc, _ := url.Parse(h.Get("Location"))
	if st != http.StatusSeeOther || loc == nil || !strings.HasPrefix(loc.String(), rs.srv.OP.Issuer()) ||
		loc.Query().Get("id_token_hint") == "" || loc.Query().Has("client_id") {
		t.Fatalf("logout: %d (want 303 to the OP with id_token_hint and no client_id)", st)
	}
	if st, _, _ := rs.do(alice, "GET", loc.String(), nil); st != http.StatusFound && st != http.StatusSeeOther && st != http.StatusOK {
		t.Fatalf("OP end_session: %d", st)
	}
	for i := range 2 {
		rs.expect(alice, i, "")
	}
}

package oxd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/internal/syncbuf"
	"github.com/oxdgo/oxd/oxdclient"
)

// fakeOxd is a small scripted oxd (an oxdclient.Transport) for unit tests:
// it issues states, codes and tokens like oxd and the OP would, enforces
// single use of states and codes, rotates refresh tokens, and records every
// secret it hands out so tests can search logs for them.
type fakeOxd struct {
	mu        sync.Mutex
	calls     map[string]int
	states    map[string]bool                            // issued and unused
	codes     map[string]string                          // code -> subject (unused codes)
	refresh   map[string]string                          // valid refresh token -> subject
	access    map[string]string                          // access token -> subject
	secrets   []string                                   // every token/code issued
	fail      map[string]error                           // command -> error answer
	hook      map[string]func(ctx context.Context) error // command -> hook run before answering
	lastParam map[string]map[string]any
	expiresIn int64
	acr       string
	uiSub     string // userinfo sub override
	authURL   string // get_authorization_url answer override ("": a valid URL)
	noRefresh bool
}

func newFakeOxd() *fakeOxd {
	return &fakeOxd{
		calls:     map[string]int{},
		states:    map[string]bool{},
		codes:     map[string]string{},
		refresh:   map[string]string{},
		access:    map[string]string{},
		fail:      map[string]error{},
		hook:      map[string]func(context.Context) error{},
		lastParam: map[string]map[string]any{},
		expiresIn: 3600,
	}
}

func randHex(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func (f *fakeOxd) count(cmd string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[cmd]
}

func (f *fakeOxd) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.calls {
		n += v
	}
	return n
}

func (f *fakeOxd) setFail(cmd string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, cmd)
		return
	}
	f.fail[cmd] = err
}

// setAuthURL makes get_authorization_url answer u ("": a valid URL with
// a fresh state).
func (f *fakeOxd) setAuthURL(u string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authURL = u
}

func (f *fakeOxd) setHook(cmd string, h func(context.Context) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook[cmd] = h
}

func (f *fakeOxd) param(cmd, name string) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastParam[cmd][name]
}

func (f *fakeOxd) allSecrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.secrets...)
}

// issueCode plays the OP: the user signs in as subject on the authorization
// page opened for state; the OP redirects back with the returned code.
func (f *fakeOxd) issueCode(state, subject string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	code := randHex("CODE-")
	f.codes[code] = subject + "\x00" + state
	f.secrets = append(f.secrets, code)
	return code
}

// Do answers one command. It is long because it is a table: one case per
// oxd command the middleware sends, each with the fake's rules for it.
func (f *fakeOxd) Do(ctx context.Context, cmd string, params, result any) error {
	raw, err := json.Marshal(params)
	if err != nil {
		return err
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	f.mu.Lock()
	f.calls[cmd]++
	f.lastParam[cmd] = p
	hook := f.hook[cmd]
	ferr := f.fail[cmd]
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx); err != nil {
			return err
		}
	}
	if ferr != nil {
		return ferr
	}
	if err := ctx.Err(); err != nil {
		return &oxdclient.TransportError{Command: cmd, Kind: oxdclient.ErrTimeout, Err: err}
	}
	str := func(k string) string { s, _ := p[k].(string); return s }

	f.mu.Lock()
	var answer any
	var aerr error
	switch cmd {
	case oxdclient.CmdGetAuthorizationURL:
		st := randHex("st")
		f.states[st] = true
		answer = map[string]any{"authorization_url": "https://op.example/authorize?response_type=code&client_id=c1&redirect_uri=https://app.example/callback&scope=openid+profile&state=" + st + "&nonce=n1"}
		if f.authURL != "" {
			answer = map[string]any{"authorization_url": f.authURL}
		}
	case oxdclient.CmdGetTokensByCode:
		code, state := str("code"), str("state")
		v, ok := f.codes[code]
		switch {
		case !f.states[state]:
			aerr = &oxdclient.Error{Code: oxdclient.CodeBadRequest, Description: oxdclient.DescStateNotRegistered}
		case !ok:
			aerr = &oxdclient.Error{Code: oxdclient.CodeInternalError, Description: oxdclient.DescInternalErrorUnknown}
		default:
			delete(f.codes, code)
			delete(f.states, state)
			sub, codeState, _ := strings.Cut(v, "\x00")
			if codeState != state {
				aerr = &oxdclient.Error{Code: oxdclient.CodeInternalError, Description: oxdclient.DescInternalErrorUnknown}
				break
			}
			at, rt, it := randHex("AT-"), randHex("RT-"), randHex("IDT-")
			f.access[at] = sub
			f.secrets = append(f.secrets, at, rt, it)
			claims := map[string][]string{"sub": {sub}, "iss": {"https://op.example"}, "aud": {"c1"}}
			if f.acr != "" {
				claims["acr"] = []string{f.acr}
			}
			ans := map[string]any{"access_token": at, "expires_in": f.expiresIn, "id_token": it, "id_token_claims": claims}
			if !f.noRefresh {
				f.refresh[rt] = sub
				ans["refresh_token"] = rt
			}
			answer = ans
		}
	case oxdclient.CmdGetUserInfo:
		sub, ok := f.access[str("access_token")]
		if !ok {
			aerr = &oxdclient.Error{Code: oxdclient.CodeInternalError, Description: oxdclient.DescInternalErrorUnknown}
			break
		}
		if f.uiSub != "" {
			sub = f.uiSub
		}
		answer = map[string]any{"claims": map[string][]string{
			"sub": {sub}, "name": {"User " + sub}, "email": {sub + "@example.test"},
		}, "access_token": nil, "refresh_token": nil}
	case oxdclient.CmdGetAccessTokenByRefreshToken:
		old := str("refresh_token")
		sub, ok := f.refresh[old]
		if !ok {
			aerr = &oxdclient.Error{Code: oxdclient.CodeInternalError, Description: oxdclient.DescInternalErrorUnknown}
			break
		}
		delete(f.refresh, old) // rotation: the old refresh token is spent
		at, rt := randHex("AT-"), randHex("RT-")
		f.access[at] = sub
		f.refresh[rt] = sub
		f.secrets = append(f.secrets, at, rt)
		answer = map[string]any{"access_token": at, "expires_in": f.expiresIn, "refresh_token": rt, "scope": "openid"}
	case oxdclient.CmdGetLogoutURI:
		answer = map[string]any{"uri": "https://op.example/end_session?post_logout_redirect_uri=" + url.QueryEscape(str("post_logout_redirect_uri"))}
	default:
		aerr = &oxdclient.Error{Code: oxdclient.CodeUnsupportedOperation}
	}
	f.mu.Unlock()
	if aerr != nil {
		return aerr
	}
	if result == nil {
		return nil
	}
	b, err := json.Marshal(answer)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, result)
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = syncbuf.Buffer

// rig is an application over TLS (default Secure cookies) using the fake
// oxd: /private/ requires login, /callback, /login, /logout are mounted,
// and the mux is wrapped by the session manager's LoadAndSave unless
// noLoadAndSave.
type rig struct {
	t    *testing.T
	fake *fakeOxd
	sm   *scs.SessionManager
	auth *Auth
	srv  *httptest.Server
	logs *syncBuffer

	mu     sync.Mutex
	errs   []error
	clock  time.Time
	clockD time.Duration
}

type rigOpts struct {
	noLoadAndSave bool
	cfg           func(*Config)
	sm            func(*scs.SessionManager)
}

func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	rg := &rig{t: t, fake: newFakeOxd(), logs: &syncBuffer{}, clock: time.Now()}
	rg.sm = scs.New()
	if o.sm != nil {
		o.sm(rg.sm)
	}
	client := oxdclient.New(rg.fake, oxdclient.Config{})
	cfg := Config{
		OxdID:                 "oxd-id-1",
		PostLogoutRedirectURI: "https://app.example/logged-out",
		Logger:                newTestLogger(rg.logs),
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	inner := cfg.ErrorHandler
	a, err := New(client, rg.sm, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	a.errh = func(w http.ResponseWriter, r *http.Request, status int, err error) {
		rg.mu.Lock()
		rg.errs = append(rg.errs, err)
		rg.mu.Unlock()
		if inner != nil {
			inner(w, r, status, err)
			return
		}
		a.defaultErrorHandler(w, r, status, err)
	}
	a.now = rg.now
	rg.auth = a
	t.Cleanup(a.revoker.wg.Wait) // background revocations of a logout

	mux := http.NewServeMux()
	mux.Handle("/private/", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := UserFrom(r.Context())
		if !ok {
			http.Error(w, "no user in context", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "sub=%s email=%s name=%s at=%s uri=%s", u.Subject, u.Claim("email"), u.Claim("name"), u.AccessToken().Reveal(), r.URL.RequestURI())
	})))
	mux.Handle("/callback", a.CallbackHandler())
	mux.Handle("/login", a.LoginHandler())
	mux.Handle("/logout", a.LogoutHandler())
	mux.HandleFunc("/visit", func(w http.ResponseWriter, r *http.Request) {
		// The application's own use of the session (a cart, a preference).
		rg.sm.Put(r.Context(), "app.visited", true)
	})
	mux.HandleFunc("/public", func(w http.ResponseWriter, r *http.Request) {
		if u, ok := a.Authenticated(r); ok {
			fmt.Fprintf(w, "hello %s", u.Subject)
			return
		}
		fmt.Fprint(w, "hello stranger")
	})
	var h http.Handler = mux
	if !o.noLoadAndSave {
		h = rg.sm.LoadAndSave(mux)
	}
	rg.srv = httptest.NewTLSServer(h)
	t.Cleanup(rg.srv.Close)
	return rg
}

func (rg *rig) now() time.Time {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.clock.Add(rg.clockD)
}

func (rg *rig) advance(d time.Duration) {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	rg.clockD += d
}

func (rg *rig) lastErr() error {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if len(rg.errs) == 0 {
		return nil
	}
	return rg.errs[len(rg.errs)-1]
}

// browser returns a client with its own cookie jar that does not follow
// redirects.
func (rg *rig) browser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		rg.t.Fatal(err)
	}
	c := rg.srv.Client()
	return &http.Client{
		Transport:     c.Transport,
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (rg *rig) do(c *http.Client, method, path string, hdr map[string]string) resp {
	rg.t.Helper()
	req, err := http.NewRequest(method, rg.srv.URL+path, nil)
	if err != nil {
		rg.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		rg.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b.String()}
}

func (rg *rig) get(c *http.Client, path string) resp { return rg.do(c, http.MethodGet, path, nil) }

// startLogin requests path and expects the redirect to the OP; it returns
// the state of the authorization URL.
func (rg *rig) startLogin(c *http.Client, path string) string {
	rg.t.Helper()
	r := rg.get(c, path)
	if r.status != http.StatusSeeOther {
		rg.t.Fatalf("GET %s: status %d, want 303 to the OP (body %q)", path, r.status, r.body)
	}
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil || u.Host != "op.example" {
		rg.t.Fatalf("GET %s: Location %q is not the OP", path, r.header.Get("Location"))
	}
	st := u.Query().Get("state")
	if st == "" {
		rg.t.Fatalf("no state in %q", u)
	}
	return st
}

// finish plays the OP for state (as subject) and calls the callback.
func (rg *rig) finish(c *http.Client, state, subject string) resp {
	rg.t.Helper()
	code := rg.fake.issueCode(state, subject)
	return rg.get(c, "/callback?code="+url.QueryEscape(code)+"&state="+url.QueryEscape(state))
}

// login logs c in as subject starting at path and returns the callback's
// answer.
func (rg *rig) login(c *http.Client, path, subject string) resp {
	rg.t.Helper()
	return rg.finish(c, rg.startLogin(c, path), subject)
}

func (rg *rig) sessionCookie(c *http.Client) string {
	u, _ := url.Parse(rg.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == rg.sm.Cookie.Name {
			return ck.Value
		}
	}
	return ""
}

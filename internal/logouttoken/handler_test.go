package logouttoken

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/oxdgo/oxd/sessionindex"
)

// testApp is one application replica wired the way the root wires the
// handlers: a scs session manager, a session index that login adds to, and
// the two logout endpoints, whose destroy deletes the store key from the
// scs Store.
type testApp struct {
	sm     *scs.SessionManager
	idx    Index
	srv    *httptest.Server
	issuer string
}

// storeKey is the key scs addresses its Store with for token.
func storeKey(sm *scs.SessionManager, token string) string {
	if !sm.HashTokenInStore {
		return token
	}
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func destroyIn(store scs.Store) DestroyFunc {
	return func(ctx context.Context, key string) error {
		if cs, ok := store.(scs.CtxStore); ok {
			return cs.DeleteCtx(ctx, key)
		}
		return store.Delete(key)
	}
}

type fullIndex interface {
	Index
	Add(ctx context.Context, e sessionindex.Entry) ([]string, error)
}

func newTestApp(t *testing.T, store scs.Store, hashed bool, idx fullIndex, v *Validator, issuer string, log *slog.Logger, destroy DestroyFunc) *testApp {
	t.Helper()
	sm := scs.New()
	sm.Store = store
	sm.HashTokenInStore = hashed
	sm.Lifetime = time.Hour
	if destroy == nil {
		destroy = destroyIn(store)
	}
	a := &testApp{sm: sm, idx: idx, issuer: issuer}
	mux := http.NewServeMux()
	mux.Handle("POST /login", sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if err := sm.RenewToken(ctx); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sub := r.URL.Query().Get("sub")
		sm.Put(ctx, "sub", sub)
		e := sessionindex.Entry{Token: storeKey(sm, sm.Token(ctx)), Issuer: issuer, Subject: sub, SID: r.URL.Query().Get("sid"), Expires: time.Now().Add(sm.Lifetime)}
		if _, err := idx.Add(ctx, e); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})))
	mux.Handle("GET /me", sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sub := sm.GetString(r.Context(), "sub"); sub != "" {
			_, _ = io.WriteString(w, sub)
			return
		}
		_, _ = io.WriteString(w, "anonymous")
	})))
	mux.Handle("/backchannel", BackChannelHandler(v, idx, destroy, log))
	fc, err := FrontChannelHandler(issuer, idx, destroy, log)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/frontchannel", fc)
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

// browser is a client with its own cookie jar that never follows redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (a *testApp) login(t *testing.T, b *http.Client, sub, sid string) {
	t.Helper()
	resp, err := b.Post(a.srv.URL+"/login?sub="+url.QueryEscape(sub)+"&sid="+url.QueryEscape(sid), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
}

func (a *testApp) whoami(t *testing.T, b *http.Client) string {
	t.Helper()
	resp, err := b.Get(a.srv.URL + "/me")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, u, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := browser(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

func (a *testApp) backchannel(t *testing.T, token string) response {
	t.Helper()
	return do(t, http.MethodPost, a.srv.URL+"/backchannel", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
}

func checkNoStoreNoRedirect(t *testing.T, r response) {
	t.Helper()
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
	}
	if r.header.Get("Location") != "" || (r.status >= 300 && r.status < 400) {
		t.Errorf("answered a redirect: %d %q", r.status, r.header.Get("Location"))
	}
}

func checkJSONError(t *testing.T, r response, status int, code string) string {
	t.Helper()
	checkNoStoreNoRedirect(t, r)
	if r.status != status {
		t.Fatalf("status %d (%s), want %d", r.status, r.body, status)
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error != code {
		t.Fatalf("body %q, want JSON error %q", r.body, code)
	}
	return e.Description
}

// scenario: alice in two browsers of one OP session (op-session-1), alice
// in a third browser of another OP session, bob in his own.
type scenario struct {
	alice1, alice2, alice3, bob *http.Client
}

func setUp(t *testing.T, a *testApp) scenario {
	s := scenario{browser(t), browser(t), browser(t), browser(t)}
	a.login(t, s.alice1, "alice", "op-session-1")
	a.login(t, s.alice2, "alice", "op-session-1")
	a.login(t, s.alice3, "alice", "op-session-2")
	a.login(t, s.bob, "bob", "op-session-3")
	return s
}

func (s scenario) expect(t *testing.T, a *testApp, alice1, alice2, alice3, bob string) {
	t.Helper()
	for _, c := range []struct {
		name string
		b    *http.Client
		want string
	}{{"alice1", s.alice1, alice1}, {"alice2", s.alice2, alice2}, {"alice3", s.alice3, alice3}, {"bob", s.bob, bob}} {
		if got := a.whoami(t, c.b); got != c.want {
			t.Errorf("%s is %q, want %q", c.name, got, c.want)
		}
	}
}

func newMemApp(t *testing.T, op *testOP, hashed bool, log *slog.Logger) (*testApp, *sessionindex.Memory) {
	idx := sessionindex.NewMemory(sessionindex.MemoryOptions{})
	v := newValidator(t, op, idx, nil)
	return newTestApp(t, memstore.NewWithCleanupInterval(0), hashed, idx, v, op.issuer, log, nil), idx
}

// TestBackChannelLogoutEndsOPSession: a logout token with sid ends exactly
// the sessions of that OP session, with or without HashTokenInStore.
func TestBackChannelLogoutEndsOPSession(t *testing.T) {
	for _, hashed := range []bool{false, true} {
		t.Run(map[bool]string{false: "PlainTokens", true: "HashTokenInStore"}[hashed], func(t *testing.T) {
			k := newRSAKey("k1", 0)
			op := newTestOP(t, k)
			a, idx := newMemApp(t, op, hashed, nil)
			s := setUp(t, a)
			s.expect(t, a, "alice", "alice", "alice", "bob")
			r := a.backchannel(t, sign(t, k, "JWT", op.claims())) // sid op-session-1, no sub
			checkNoStoreNoRedirect(t, r)
			if r.status != http.StatusOK {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			s.expect(t, a, "anonymous", "anonymous", "alice", "bob")
			if left, _ := idx.BySID(bg, op.issuer, "op-session-1"); len(left) != 0 {
				t.Fatalf("index still holds %d sessions of the ended OP session", len(left))
			}
		})
	}
}

// TestBackChannelLogoutSubOnlyEndsEverySessionOfSubject: without sid the
// subject's every session ends.
func TestBackChannelLogoutSubOnlyEndsEverySessionOfSubject(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	a, _ := newMemApp(t, op, true, nil)
	s := setUp(t, a)
	cl := op.claims()
	delete(cl, "sid")
	cl["sub"] = "alice"
	if r := a.backchannel(t, sign(t, k, "logout+jwt", cl)); r.status != http.StatusOK {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	s.expect(t, a, "anonymous", "anonymous", "anonymous", "bob")
}

func TestBackChannelBadRequests(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	a, _ := newMemApp(t, op, false, nil)
	s := setUp(t, a)
	good := url.Values{"logout_token": {sign(t, k, "JWT", op.claims())}}.Encode()
	u := a.srv.URL + "/backchannel"
	form := "application/x-www-form-urlencoded"
	for _, c := range []struct {
		name, method, ctype, body string
		status                    int
	}{
		{"GET", http.MethodGet, "", "", http.StatusMethodNotAllowed},
		{"PUT", http.MethodPut, form, good, http.StatusMethodNotAllowed},
		{"JSON", http.MethodPost, "application/json", `{"logout_token":"x"}`, http.StatusUnsupportedMediaType},
		{"TextPlain", http.MethodPost, "text/plain", good, http.StatusUnsupportedMediaType},
		{"Multipart", http.MethodPost, "multipart/form-data; boundary=x", good, http.StatusUnsupportedMediaType},
		{"NoContentType", http.MethodPost, "", good, http.StatusUnsupportedMediaType},
		{"OversizedBody", http.MethodPost, form, good + "&pad=" + strings.Repeat("a", MaxBodySize), http.StatusRequestEntityTooLarge},
		{"NoToken", http.MethodPost, form, "other=1", http.StatusBadRequest},
		{"EmptyToken", http.MethodPost, form, "logout_token=", http.StatusBadRequest},
		{"TwoTokens", http.MethodPost, form, good + "&" + good, http.StatusBadRequest},
		{"BadEncoding", http.MethodPost, form, "logout_token=%zz", http.StatusBadRequest},
		{"GarbageToken", http.MethodPost, form, "logout_token=not.a.jwt", http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, c.method, u, c.ctype, strings.NewReader(c.body))
			checkNoStoreNoRedirect(t, r)
			if r.status != c.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, c.status)
			}
			if c.status == http.StatusMethodNotAllowed && r.header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q", r.header.Get("Allow"))
			}
		})
	}
	// A token in the query string is not read.
	r := do(t, http.MethodPost, u+"?"+good, form, strings.NewReader(""))
	checkJSONError(t, r, http.StatusBadRequest, "invalid_request")
	// A forged token: 400 invalid_request with the reason.
	desc := checkJSONError(t, a.backchannel(t, sign(t, newRSAKey("k1", 1), "JWT", op.claims())), http.StatusBadRequest, "invalid_request")
	if !strings.Contains(desc, "signature") {
		t.Errorf("description %q does not name the reason", desc)
	}
	s.expect(t, a, "alice", "alice", "alice", "bob")
	// The good token was never accepted above, so it still works.
	if r := do(t, http.MethodPost, u, form, strings.NewReader(good)); r.status != http.StatusOK {
		t.Fatalf("good token after the bad requests: %d %s", r.status, r.body)
	}
	s.expect(t, a, "anonymous", "anonymous", "alice", "bob")
}

func TestBackChannelReplayRefused(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	a, _ := newMemApp(t, op, false, nil)
	raw := sign(t, k, "JWT", op.claims())
	if r := a.backchannel(t, raw); r.status != http.StatusOK {
		t.Fatalf("first delivery: %d %s", r.status, r.body)
	}
	desc := checkJSONError(t, a.backchannel(t, raw), http.StatusBadRequest, "invalid_request")
	if !strings.Contains(desc, "replay") {
		t.Errorf("description %q", desc)
	}
}

func TestBackChannelWithoutIndexIs501(t *testing.T) {
	for _, h := range []http.Handler{
		BackChannelHandler(nil, nil, nil, nil),
		BackChannelHandler(&Validator{}, nil, func(context.Context, string) error { return nil }, nil),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/bc", strings.NewReader("logout_token=x")))
		checkJSONError(t, response{rec.Code, rec.Header(), rec.Body.String()}, http.StatusNotImplemented, "server_error")
	}
}

// TestBackChannelDestroyFailure: a session that could not be destroyed is
// reported (400 server_error) and stays in the index; nothing logged holds
// the token.
func TestBackChannelDestroyFailure(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	idx := sessionindex.NewMemory(sessionindex.MemoryOptions{})
	v := newValidator(t, op, idx, nil)
	failing := func(context.Context, string) error { return errors.New("store down") }
	a := newTestApp(t, memstore.NewWithCleanupInterval(0), false, idx, v, op.issuer, log, failing)
	b := browser(t)
	a.login(t, b, "alice", "op-session-1")
	raw := sign(t, k, "JWT", op.claims())
	checkJSONError(t, a.backchannel(t, raw), http.StatusBadRequest, "server_error")
	if left, _ := idx.BySID(bg, op.issuer, "op-session-1"); len(left) != 1 {
		t.Fatalf("index holds %d entries, want the 1 that could not be destroyed", len(left))
	}
	// And a refused token is logged by reason.
	checkJSONError(t, a.backchannel(t, raw), http.StatusBadRequest, "invalid_request")
	for _, part := range strings.Split(raw, ".") {
		if strings.Contains(logs.String(), part) {
			t.Fatalf("the log holds a part of the token:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "store down") || !strings.Contains(logs.String(), "replay") {
		t.Fatalf("the log does not say what happened:\n%s", logs.String())
	}
}

func TestFrontChannelLogout(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	a, _ := newMemApp(t, op, true, nil)
	s := setUp(t, a)
	origin := op.issuer // the test OP's issuer is its origin
	// fc and checkPage take the t of the (sub)test that calls them: a Fatal
	// on the parent's t from a subtest would stop the wrong goroutine.
	fc := func(t *testing.T, q url.Values) response {
		return do(t, http.MethodGet, a.srv.URL+"/frontchannel?"+q.Encode(), "", nil)
	}
	checkPage := func(t *testing.T, r response, status int) {
		t.Helper()
		checkNoStoreNoRedirect(t, r)
		if r.status != status {
			t.Fatalf("status %d (%s), want %d", r.status, r.body, status)
		}
		if csp := r.header.Get("Content-Security-Policy"); csp != "default-src 'none'; frame-ancestors "+origin {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
		if r.header.Get("X-Frame-Options") != "" {
			t.Errorf("X-Frame-Options set: the OP could not frame the page")
		}
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Errorf("Content-Type = %q", r.header.Get("Content-Type"))
		}
	}
	for name, q := range map[string]url.Values{
		"NoParameters": {},
		"NoSID":        {"iss": {op.issuer}},
		"NoIss":        {"sid": {"op-session-1"}},
		"OtherIssuer":  {"iss": {"https://evil.example"}, "sid": {"op-session-1"}},
		"IssuerSlash":  {"iss": {op.issuer + "/"}, "sid": {"op-session-1"}},
		"TwoSIDs":      {"iss": {op.issuer}, "sid": {"op-session-1", "op-session-2"}},
		"EmptySID":     {"iss": {op.issuer}, "sid": {""}},
		"LongSID":      {"iss": {op.issuer}, "sid": {strings.Repeat("s", sessionindex.MaxValueLen+1)}},
	} {
		t.Run(name, func(t *testing.T) { checkPage(t, fc(t, q), http.StatusBadRequest) })
	}
	r := do(t, http.MethodPost, a.srv.URL+"/frontchannel?"+url.Values{"iss": {op.issuer}, "sid": {"op-session-1"}}.Encode(), "", nil)
	checkPage(t, r, http.StatusMethodNotAllowed)
	s.expect(t, a, "alice", "alice", "alice", "bob")

	checkPage(t, fc(t, url.Values{"iss": {op.issuer}, "sid": {"op-session-1"}}), http.StatusOK)
	s.expect(t, a, "anonymous", "anonymous", "alice", "bob")
	// Loading it again (the OP retries, the user reloads) is harmless.
	checkPage(t, fc(t, url.Values{"iss": {op.issuer}, "sid": {"op-session-1"}}), http.StatusOK)
}

func TestFrontChannelIssuerMustBeAnOrigin(t *testing.T) {
	idx := sessionindex.NewMemory(sessionindex.MemoryOptions{})
	for _, iss := range []string{"", "op.example", "ftp://op.example", "https://op.example; script-src *", "https://"} {
		if _, err := FrontChannelHandler(iss, idx, func(context.Context, string) error { return nil }, nil); err == nil {
			t.Errorf("FrontChannelHandler(%q) accepted", iss)
		}
	}
	h, err := FrontChannelHandler("https://op.example/realms/x", idx, func(context.Context, string) error { return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/fc", nil))
	if csp := rec.Header().Get("Content-Security-Policy"); csp != "default-src 'none'; frame-ancestors https://op.example" {
		t.Fatalf("CSP = %q", csp)
	}
}

package devop

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
)

// newTestOP starts an OP like StartOP and closes it when the test ends
// (the package's own copy of oxdtest.NewTestOP, which it cannot import).
func newTestOP(t testing.TB, cfg OPConfig) *OP {
	t.Helper()
	op, err := StartOP(cfg)
	if err != nil {
		t.Fatalf("start OP: %v", err)
	}
	t.Cleanup(op.Close)
	return op
}

// testClock is a settable clock for OPConfig.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// regClient is a registered client as the tests see it.
type regClient struct {
	ID, Secret, RegToken, RegURI string
	RedirectURI                  string
	Raw                          map[string]any
}

const (
	testRedirect       = "http://127.0.0.1:9/callback"
	testPostLogout     = "http://127.0.0.1:9/logged-out"
	testClaimsRedirect = "http://127.0.0.1:9/claims-cb"
)

func defaultMeta() map[string]any {
	return map[string]any{
		"redirect_uris":             []string{testRedirect},
		"post_logout_redirect_uris": []string{testPostLogout},
		"claims_redirect_uris":      []string{testClaimsRedirect},
		"grant_types":               []string{"authorization_code", "refresh_token", "client_credentials", GrantTypeUMATicket},
		"response_types":            []string{"code"},
		"scope":                     "openid profile email offline_access uma_protection uma_authorization oxd",
		"client_name":               "Test RP",
	}
}

func doJSON(t testing.TB, method, u, bearer string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, b
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "body: %s", b)
	return m
}

func register(t testing.TB, op *OP, meta map[string]any) regClient {
	t.Helper()
	res, b := doJSON(t, http.MethodPost, op.Issuer()+"/register", "", meta)
	require.Equal(t, http.StatusCreated, res.StatusCode, "body: %s", b)
	m := decode(t, b)
	rc := regClient{Raw: m, RedirectURI: testRedirect}
	rc.ID, _ = m["client_id"].(string)
	rc.Secret, _ = m["client_secret"].(string)
	rc.RegToken, _ = m["registration_access_token"].(string)
	rc.RegURI, _ = m["registration_client_uri"].(string)
	if uris, ok := m["redirect_uris"].([]any); ok && len(uris) > 0 {
		rc.RedirectURI, _ = uris[0].(string)
	}
	return rc
}

// tokenCall posts a form to the token-style endpoint with basic auth.
func postForm(t testing.TB, u string, c *regClient, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c != nil {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	if len(bytes.TrimSpace(b)) == 0 {
		return res, nil
	}
	return res, decode(t, b)
}

func token(t testing.TB, op *OP, c regClient, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	return postForm(t, op.Issuer()+"/token", &c, form)
}

// browser is a cookie-jar HTTP client that does not follow redirects.
func browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t testing.TB, cl *http.Client, u string) (*http.Response, string) {
	t.Helper()
	res, err := cl.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

func submit(t testing.TB, cl *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	res, err := cl.PostForm(u, form)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

var (
	reLoginInteraction  = regexp.MustCompile(`name="interaction" value="([^"]+)"`)
	reClaimsInteraction = regexp.MustCompile(`name="oxdtest_interaction" value="([^"]+)"`)
	reXSRF              = regexp.MustCompile(`name="xsrf" value="([^"]+)"`)
	reAction            = regexp.MustCompile(`action="([^"]+)"`)
)

func field(t testing.TB, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	require.NotNil(t, m, "pattern %s not found in page:\n%s", re, page)
	return html.UnescapeString(m[1])
}

func pkcePair() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

type authParams struct {
	scope, state, nonce, challenge, prompt, redirect string
}

func authURL(op *OP, c regClient, p authParams) string {
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {c.ID},
		"redirect_uri":  {c.RedirectURI},
		"scope":         {p.scope},
	}
	if p.redirect != "" {
		q.Set("redirect_uri", p.redirect)
	}
	if p.scope == "" {
		q.Set("scope", "openid profile email")
	}
	for k, v := range map[string]string{"state": p.state, "nonce": p.nonce, "code_challenge": p.challenge, "prompt": p.prompt} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if p.challenge != "" {
		q.Set("code_challenge_method", "S256")
	}
	return op.Issuer() + "/authorize?" + q.Encode()
}

// loginThroughForm opens the authorization URL in the browser, fills in
// the login form and returns the redirect target.
func loginThroughForm(t testing.TB, cl *http.Client, authz, username, password string) *url.URL {
	t.Helper()
	res, page := get(t, cl, authz)
	require.Equal(t, http.StatusOK, res.StatusCode, page)
	require.Contains(t, page, `name="username"`)
	require.Contains(t, page, `name="password"`)
	require.Contains(t, page, `<button type="submit">Sign in</button>`)
	action := field(t, reAction, page)
	res, page = submit(t, cl, action, url.Values{
		"interaction": {field(t, reLoginInteraction, page)},
		"username":    {username},
		"password":    {password},
	})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, page)
	loc, err := res.Location()
	require.NoError(t, err)
	return loc
}

// codeFlow logs in as alice with PKCE and exchanges the code.
func codeFlow(t testing.TB, op *OP, c regClient, scope string) map[string]any {
	t.Helper()
	verifier, challenge := pkcePair()
	loc := loginThroughForm(t, browser(t), authURL(op, c, authParams{scope: scope, state: "st", nonce: "n-1", challenge: challenge}), "alice", "alice-password")
	code := loc.Query().Get("code")
	require.NotEmpty(t, code, loc.String())
	res, tok := token(t, op, c, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.RedirectURI}, "code_verifier": {verifier},
	})
	require.Equal(t, http.StatusOK, res.StatusCode, tok)
	return tok
}

func clientToken(t testing.TB, op *OP, c regClient, scope string) string {
	t.Helper()
	res, tok := token(t, op, c, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
	require.Equal(t, http.StatusOK, res.StatusCode, tok)
	return tok["access_token"].(string)
}

// verifyIDToken checks an ID token against the OP's published JWKS.
func verifyIDToken(t testing.TB, op *OP, idt string) (map[string]any, string) {
	t.Helper()
	res, b := doJSON(t, http.MethodGet, op.Issuer()+"/jwks", "", nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(b, &set))
	tok, err := jwt.ParseSigned(idt, []jose.SignatureAlgorithm{jose.RS256})
	require.NoError(t, err)
	require.Len(t, tok.Headers, 1)
	kid := tok.Headers[0].KeyID
	keys := set.Key(kid)
	require.Len(t, keys, 1, "kid %q not in JWKS", kid)
	var claims map[string]any
	require.NoError(t, tok.Claims(keys[0].Key, &claims))
	return claims, kid
}

func introspect(t testing.TB, op *OP, c regClient, tok string) map[string]any {
	t.Helper()
	res, m := postForm(t, op.Issuer()+"/introspect", &c, url.Values{"token": {tok}})
	require.Equal(t, http.StatusOK, res.StatusCode, m)
	return m
}

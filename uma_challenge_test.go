package oxd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/internal/scopeexpr"
	"github.com/oxdgo/oxd/oxdclient"
)

func readUMAFixture(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/uma/" + name)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

// UMA Grant §3.2.1: the spec's own example, byte for byte.
func TestUMAChallengeSpecExample(t *testing.T) {
	var fx struct {
		Realm, AsURI, Ticket string
		WWWAuthenticate      string `json:"www_authenticate"`
	}
	readUMAFixture(t, "grant-3.2.1-challenge.json", &fx)
	fx.AsURI = "https://as.example.com"
	h, err := umaChallenge(fx.Realm, fx.AsURI, fx.Ticket)
	require.NoError(t, err)
	assert.Equal(t, fx.WWWAuthenticate, h)
	f := parseChallenge(t, h)
	assert.Equal(t, map[string]string{"realm": "example", "as_uri": "https://as.example.com", "ticket": fx.Ticket}, f)
}

// UMA Grant §3.2.2: the Warning value.
func TestUMAWarningSpec(t *testing.T) {
	var fx struct{ Warning string }
	readUMAFixture(t, "grant-3.2.2-warning.json", &fx)
	assert.Equal(t, fx.Warning, UMAWarning)
}

func TestQuoteString(t *testing.T) {
	for in, want := range map[string]string{
		"":                `""`,
		"abc":             `"abc"`,
		`a"b`:             `"a\"b"`,
		`a\b`:             `"a\\b"`,
		"tab\there":       "\"tab\there\"",
		"https://x/y?z=1": `"https://x/y?z=1"`,
	} {
		got, err := quoteString(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got)
	}
	for _, bad := range []string{"a\r\nb", "a\nb", "a\x00", "a\x7f", "caf\u00e9", "\x1b[31m"} {
		_, err := quoteString(bad)
		assert.Error(t, err, "%q", bad)
	}
}

// RFC 6750 §2.1: the Authorization header cases.
func TestBearerRPT(t *testing.T) {
	var fx struct {
		Cases []struct {
			Header  []string
			RPT     string
			Present *bool
		}
	}
	readUMAFixture(t, "rfc6750-2.1-authorization.json", &fx)
	require.NotEmpty(t, fx.Cases)
	for _, c := range fx.Cases {
		r := httptest.NewRequest("GET", "/", nil)
		for _, v := range c.Header {
			r.Header.Add("Authorization", v)
		}
		rpt, present := bearerRPT(r)
		assert.Equal(t, c.RPT, rpt, "%q", c.Header)
		wantPresent := len(c.Header) > 0
		if c.Present != nil {
			wantPresent = *c.Present
		}
		assert.Equal(t, wantPresent, present, "%q", c.Header)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+strings.Repeat("a", maxRPTLen+1))
	rpt, _ := bearerRPT(r)
	assert.Empty(t, rpt, "oversized")
}

func TestCheckClaimsURL(t *testing.T) {
	const redirect = "https://app.example/claims"
	good := "https://as.example/gather?client_id=c&ticket=t1&claims_redirect_uri=https%3A%2F%2Fapp.example%2Fclaims&state=s1"
	assert.NoError(t, checkClaimsURL(good, "t1", redirect, "s1"))
	assert.NoError(t, checkClaimsURL("https://as.example/gather?client_id=c&ticket=t1&claims_redirect_uri=https://app.example/claims&state=s1", "t1", redirect, "s1"),
		"3.1.4's unencoded URL is fine for values that need no encoding")
	for name, c := range map[string][4]string{
		"other ticket":        {good, "t2", redirect, "s1"},
		"other redirect":      {good, "t1", "https://evil.example/claims", "s1"},
		"other state":         {good, "t1", redirect, "s2"},
		"empty state":         {good, "t1", redirect, ""},
		"not absolute":        {"/gather?ticket=t1", "t1", redirect, "s1"},
		"javascript":          {"javascript:alert(1)//?ticket=t1", "t1", redirect, "s1"},
		"repeated ticket":     {good + "&ticket=t1", "t1", redirect, "s1"},
		"split by & in value": {"https://as.example/g?ticket=t1&claims_redirect_uri=" + redirect + "&state=s1&x=2", "t1", redirect, "s1&x=2"},
	} {
		assert.Error(t, checkClaimsURL(c[0], c[1], c[2], c[3]), name)
	}
}

// The declared scope expressions go through the validator the engine
// uses (internal/scopeexpr, where the class of rules is tested): a refusal
// wraps scopeexpr.ErrInvalid, and the rule is kept in compact form.
func TestValidateExpressionIsTheSharedOne(t *testing.T) {
	e, err := validateExpression(&UMAExpression{Rule: ` { "and" : [ {"var": 0}, {"var": 1} ] } `, Data: []string{"a", "b"}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"and":[{"var":0},{"var":1}]}`, string(e.rule))
	assert.Equal(t, `{"and":[{"var":0},{"var":1}]}`, string(e.rule), "compact")
	for _, c := range []UMAExpression{
		{Rule: `{"var":""}`, Data: []string{"a"}},
		{Rule: `{"var":0}`, Data: []string{"a", "a"}},
		{Rule: `{"var":0}`},
		{Rule: `{"nand":[1]}`, Data: []string{"a"}},
	} {
		_, err := validateExpression(&c)
		assert.ErrorIs(t, err, scopeexpr.ErrInvalid, "%+v", c)
	}
}

// umaFakeOxd answers commands from a function.
type umaFakeOxd func(cmd string, params any) (string, error)

func (f umaFakeOxd) Do(_ context.Context, cmd string, params, result any) error {
	data, err := f(cmd, params)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(data), result)
}

func newFakeUMAAuth(t *testing.T, f umaFakeOxd) *Auth {
	t.Helper()
	a, err := New(oxdclient.New(f, oxdclient.Config{}), scs.New(), Config{
		OxdID: "site", PostLogoutRedirectURI: "https://app.example/bye", Realm: "app",
	})
	require.NoError(t, err)
	require.NoError(t, a.configureUMA(UMAConfig{Issuer: "https://as.example"}))
	return a
}

func serveUMA(a *Auth, pattern string, req *http.Request) *httptest.ResponseRecorder {
	mux := http.NewServeMux()
	mux.Handle(pattern, a.UMAProtect(pattern, "s")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(299)
	})))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}

// oxd's www-authenticate_header is not passed through: the challenge is
// built from the ticket, with our realm and issuer.
func TestUMAChallengeNotOxdHeader(t *testing.T) {
	var fx struct {
		Response struct {
			Data json.RawMessage
		}
	}
	readUMAFixture(t, "oxd-3.1.4-check-access-denied.json", &fx)
	a := newFakeUMAAuth(t, func(cmd string, _ any) (string, error) { return string(fx.Response.Data), nil })
	rec := serveUMA(a, "GET /x", httptest.NewRequest("GET", "/x", nil))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Equal(t, `UMA realm="app", as_uri="https://as.example", ticket="d8d9f335-a5f2-4d2e-9b1e-5b8d2f1e0c11"`, rec.Header().Get("WWW-Authenticate"))
}

// A hostile ticket from oxd is escaped, or refused when it cannot be
// carried (no header injection).
func TestUMAChallengeHostileTicket(t *testing.T) {
	ticket := ""
	a := newFakeUMAAuth(t, func(cmd string, _ any) (string, error) {
		b, _ := json.Marshal(map[string]string{"access": "denied", "ticket": ticket})
		return string(b), nil
	})
	ticket = `a"b\c`
	rec := serveUMA(a, "GET /x", httptest.NewRequest("GET", "/x", nil))
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Equal(t, `a"b\c`, parseChallenge(t, rec.Header().Get("WWW-Authenticate"))["ticket"])

	ticket = "t\r\nSet-Cookie: evil=1"
	rec = serveUMA(a, "GET /x", httptest.NewRequest("GET", "/x", nil))
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Equal(t, UMAWarning, rec.Header().Get("Warning"))
	assert.Empty(t, rec.Header().Values("WWW-Authenticate"))
	assert.Empty(t, rec.Header().Values("Set-Cookie"))

	ticket = ""
	rec = serveUMA(a, "GET /x", httptest.NewRequest("GET", "/x", nil))
	assert.Equal(t, http.StatusForbidden, rec.Code, "denied without ticket")
	assert.Equal(t, UMAWarning, rec.Header().Get("Warning"))
}

// oxd answers mapped to statuses: unknown access values and garbage deny.
func TestUMAOxdAnswers(t *testing.T) {
	for name, c := range map[string]struct {
		data   string
		err    error
		status int
		reason error
	}{
		"granted":       {`{"access":"granted"}`, nil, 299, nil},
		"GRANTED":       {`{"access":"GRANTED"}`, nil, http.StatusForbidden, ErrUMAUnreachable},
		"not_protected": {`{"access":"not_protected"}`, nil, http.StatusForbidden, ErrUMAUnreachable},
		"empty":         {`{}`, nil, http.StatusForbidden, ErrUMAUnreachable},
		"invalid_request": {"", &oxdclient.Error{Code: oxdclient.CodeInvalidRequest, Description: "Resource is not protected"},
			http.StatusInternalServerError, ErrUMAConfig},
		"invalid_oxd_id":  {"", &oxdclient.Error{Code: oxdclient.CodeInvalidOxdID}, http.StatusInternalServerError, ErrUMAConfig},
		"http_status_500": {"", &oxdclient.Error{Code: "http_status_500"}, http.StatusForbidden, ErrUMAUnreachable},
		"transport":       {"", &oxdclient.TransportError{Command: "x", Kind: oxdclient.ErrUnavailable}, http.StatusForbidden, ErrUMAUnreachable},
	} {
		t.Run(name, func(t *testing.T) {
			a := newFakeUMAAuth(t, func(string, any) (string, error) { return c.data, c.err })
			var got error
			a.errh = func(w http.ResponseWriter, r *http.Request, status int, err error) {
				got = err
				w.WriteHeader(status)
			}
			req := httptest.NewRequest("GET", "/x", nil)
			req.Header.Set("Authorization", "Bearer rpt")
			rec := serveUMA(a, "GET /x", req)
			assert.Equal(t, c.status, rec.Code)
			d := a.checkUMA(context.Background(), "GET", "/x", "rpt")
			if c.reason != nil {
				assert.True(t, errors.Is(d.Err, c.reason), "%v", d.Err)
				if c.status == http.StatusInternalServerError {
					assert.True(t, errors.Is(got, ErrUMAConfig))
				}
			}
		})
	}
}

// parseChallenge parses a UMA challenge strictly: the scheme "UMA", then
// comma-separated auth-params with quoted-string values, each once.
func parseChallenge(t testing.TB, h string) map[string]string {
	t.Helper()
	m, err := parseChallengeErr(h)
	require.NoError(t, err, "challenge %q", h)
	return m
}

func parseChallengeErr(h string) (map[string]string, error) {
	rest, ok := strings.CutPrefix(h, "UMA ")
	if !ok {
		return nil, errors.New("scheme is not UMA")
	}
	m := map[string]string{}
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, errors.New("auth-param without =")
		}
		name := rest[:eq]
		rest = rest[eq+1:]
		if rest == "" || rest[0] != '"' {
			return nil, fmt.Errorf("%s is not a quoted-string", name)
		}
		var v strings.Builder
		i := 1
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' {
				i++
				if i == len(rest) {
					return nil, errors.New("dangling escape")
				}
			}
			v.WriteByte(rest[i])
		}
		if i == len(rest) {
			return nil, errors.New("unterminated quoted-string")
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("%s repeated", name)
		}
		m[name] = v.String()
		rest = rest[i+1:]
		if rest == "" {
			break
		}
		var ok bool
		if rest, ok = strings.CutPrefix(rest, ", "); !ok {
			return nil, errors.New(`auth-params not separated by ", "`)
		}
	}
	return m, nil
}

package umaclient_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdclient/umaclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// newPhotoAPI is a UMA resource server in front of oxd (client, site
// oxdID): GET /photos needs "view" (granted by the development AS), GET
// /reports "claims_read" (need_info until the country claim is known), GET
// /secret "deny_write" (always denied).
func newPhotoAPI(ctx context.Context, client *oxdclient.Client, oxdID string) (http.Handler, error) {
	_, err := client.UMARSProtect(ctx, oxdclient.UMARSProtectParams{OxdID: oxdID, Resources: []oxdclient.UMAResource{
		{Path: "/photos", Conditions: []oxdclient.UMACondition{{HTTPMethods: []string{"GET"}, Scopes: []string{"view"}}}},
		{Path: "/reports", Conditions: []oxdclient.UMACondition{{HTTPMethods: []string{"GET"}, Scopes: []string{"claims_read"}}}},
		{Path: "/secret", Conditions: []oxdclient.UMACondition{{HTTPMethods: []string{"GET"}, Scopes: []string{"deny_write"}}}},
	}})
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rpt, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		res, err := client.UMARSCheckAccess(r.Context(), oxdclient.UMARSCheckAccessParams{
			OxdID: oxdID, RPT: oxdclient.Secret(rpt), Path: r.URL.Path, HTTPMethod: r.Method,
		})
		if err != nil {
			http.Error(w, "check failed", http.StatusInternalServerError)
			return
		}
		if res.Access == oxdclient.AccessGranted {
			fmt.Fprintf(w, "content of %s", r.URL.Path)
			return
		}
		w.Header().Set("WWW-Authenticate", res.WWWAuthenticateHeader)
		w.WriteHeader(http.StatusUnauthorized)
	}), nil
}

func photoAPI(t testing.TB, srv *oxdtest.Server) *httptest.Server {
	t.Helper()
	h, err := newPhotoAPI(context.Background(), srv.Client, srv.OxdID)
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(h)
	t.Cleanup(api.Close)
	return api
}

// get calls the API, with an RPT when rpt is not empty.
func get(t testing.TB, url string, rpt oxdclient.Secret) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rpt.IsZero() {
		req.Header.Set("Authorization", "Bearer "+rpt.Reveal())
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// challengeFor calls path without an RPT and parses the 401 challenge.
func challengeFor(t testing.TB, api *httptest.Server, path string) *umaclient.Challenge {
	t.Helper()
	res := get(t, api.URL+path, "")
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%s without RPT: %d", path, res.StatusCode)
	}
	ch, err := umaclient.ParseChallenge(res.Header)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func directClient(t testing.TB, srv *oxdtest.Server) *umaclient.Client {
	t.Helper()
	c, err := umaclient.New(umaclient.Config{
		Issuers:      []string{srv.OP.Issuer()},
		ClientID:     srv.Protection.ClientID,
		ClientSecret: srv.Protection.ClientSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func oxdClient(t testing.TB, srv *oxdtest.Server) *umaclient.Client {
	t.Helper()
	c, err := umaclient.New(umaclient.Config{Issuers: []string{srv.OP.Issuer() + "/"}, Oxd: srv.Client, OxdID: srv.OxdID})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// idToken signs in as alice (who has a country claim) and returns her ID
// token, to push as a claim token.
func idToken(t testing.TB, srv *oxdtest.Server) oxdclient.Secret {
	t.Helper()
	tok, err := srv.LoginTokens(context.Background(), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	return tok.IDToken
}

// TestRPTRoundTrip: 401 → parse → RPT → 200, directly at the AS and
// through oxd, against the development OP's UMA AS and the engine; then
// need_info (with a pushed ID token to satisfy it), request_denied and a
// reused ticket (invalid_grant) through both paths.
func TestRPTRoundTrip(t *testing.T) {
	srv := oxdtest.NewServer(t)
	api := photoAPI(t, srv)
	ctx := context.Background()
	for name, uc := range map[string]*umaclient.Client{"direct": directClient(t, srv), "oxd": oxdClient(t, srv)} {
		t.Run(name, func(t *testing.T) {
			t.Run("granted", func(t *testing.T) {
				ch := challengeFor(t, api, "/photos")
				if ch.ASURI != srv.OP.Issuer() || ch.Realm == "" {
					t.Fatalf("%+v", ch)
				}
				rpt, err := uc.RPT(ctx, ch, umaclient.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if rpt.AccessToken.IsZero() || !strings.EqualFold(rpt.TokenType, "bearer") {
					t.Fatalf("%+v", rpt)
				}
				if res := get(t, api.URL+"/photos", rpt.AccessToken); res.StatusCode != http.StatusOK {
					t.Fatalf("with RPT: %d", res.StatusCode)
				}
				if res := get(t, api.URL+"/reports", rpt.AccessToken); res.StatusCode != http.StatusUnauthorized {
					t.Fatalf("RPT for /photos opened /reports: %d", res.StatusCode)
				}
				// The ticket was used: a second redemption is invalid_grant.
				_, err = uc.RPT(ctx, ch, umaclient.Options{})
				if !errors.Is(err, umaclient.ErrInvalidGrant) {
					t.Fatalf("reused ticket: %v", err)
				}
				var ae *umaclient.Error
				if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusBadRequest {
					t.Fatalf("%#v", err)
				}
			})
			t.Run("need_info then pushed claims", func(t *testing.T) {
				ch := challengeFor(t, api, "/reports")
				_, err := uc.RPT(ctx, ch, umaclient.Options{})
				if !errors.Is(err, umaclient.ErrNeedInfo) {
					t.Fatalf("%v", err)
				}
				var ae *umaclient.Error
				if !errors.As(err, &ae) || ae.Ticket == "" || ae.Ticket == ch.Ticket || ae.RedirectUser == "" ||
					len(ae.RequiredClaims) != 1 || ae.RequiredClaims[0].Name != "country" {
					t.Fatalf("%+v", ae)
				}
				if strings.Contains(err.Error(), ae.Ticket) || strings.Contains(err.Error(), ch.Ticket) {
					t.Fatalf("error quotes a ticket: %v", err)
				}
				next := ae.Challenge()
				if next == nil || next.ASURI != ch.ASURI || next.Ticket != ae.Ticket {
					t.Fatalf("%+v", next)
				}
				rpt, err := uc.RPT(ctx, next, umaclient.Options{ClaimToken: idToken(t, srv)})
				if err != nil {
					t.Fatal(err)
				}
				if res := get(t, api.URL+"/reports", rpt.AccessToken); res.StatusCode != http.StatusOK {
					t.Fatalf("with RPT: %d", res.StatusCode)
				}
			})
			t.Run("denied", func(t *testing.T) {
				_, err := uc.RPT(ctx, challengeFor(t, api, "/secret"), umaclient.Options{})
				var ae *umaclient.Error
				if !errors.Is(err, umaclient.ErrRequestDenied) || !errors.As(err, &ae) || ae.HTTPStatus != http.StatusForbidden {
					t.Fatalf("%v", err)
				}
			})
		})
	}
}

// TestRPTUntrustedAS: a challenge naming a server that is not in Issuers
// is refused before anything is sent.
func TestRPTUntrustedAS(t *testing.T) {
	srv := oxdtest.NewServer(t)
	api := photoAPI(t, srv)
	ch := challengeFor(t, api, "/photos")
	var hits atomic.Int32
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer evil.Close()
	forged := *ch
	forged.ASURI = evil.URL
	tokenCalls := srv.OP.Calls(oxdtest.EndpointToken)
	for name, uc := range map[string]*umaclient.Client{"direct": directClient(t, srv), "oxd": oxdClient(t, srv)} {
		if _, err := uc.RPT(context.Background(), &forged, umaclient.Options{}); !errors.Is(err, umaclient.ErrUntrustedAS) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if hits.Load() != 0 || srv.OP.Calls(oxdtest.EndpointToken) != tokenCalls {
		t.Fatal("something was sent for an untrusted as_uri")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	oc := oxdclient.New(nil, oxdclient.Config{})
	for name, cfg := range map[string]umaclient.Config{
		"no issuers":         {ClientID: "c", ClientSecret: "s"},
		"http issuer":        {Issuers: []string{"http://as.example.com"}, ClientID: "c", ClientSecret: "s"},
		"no client":          {Issuers: []string{"https://as.example.com"}},
		"both":               {Issuers: []string{"https://as.example.com"}, ClientID: "c", ClientSecret: "s", Oxd: oc, OxdID: "x"},
		"oxd without oxd_id": {Issuers: []string{"https://as.example.com"}, Oxd: oc},
		"no secret":          {Issuers: []string{"https://as.example.com"}, ClientID: "c"},
	} {
		if _, err := umaclient.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

const fakeSecret = "s3cr3t/+:%value"

// fakeAS is a hostile or broken authorization server on loopback: its
// discovery document and token endpoint answer what the test says.
type fakeAS struct {
	*httptest.Server
	discovery func(w http.ResponseWriter, r *http.Request, issuer string)
	token     func(w http.ResponseWriter, r *http.Request)
	tokenHits atomic.Int32
}

func newFakeAS(t *testing.T) *fakeAS {
	f := &fakeAS{}
	f.discovery = func(w http.ResponseWriter, r *http.Request, issuer string) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q}`, issuer, issuer+"/token")
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/uma2-configuration":
			f.discovery(w, r, f.URL)
		case "/token":
			f.tokenHits.Add(1)
			f.token(w, r)
		case "/elsewhere":
			t.Error("a redirect was followed")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAS) client(t *testing.T) *umaclient.Client {
	c, err := umaclient.New(umaclient.Config{Issuers: []string{f.URL}, ClientID: "client:1", ClientSecret: fakeSecret,
		HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func jsonAnswer(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// TestDirectRequestShape: the token request is a form POST with the
// uma-ticket grant, the ticket, the pushed claim token and its default
// format, and client_secret_basic with both parts form-encoded (RFC 6749
// §2.3.1); the secret never goes into the form.
func TestDirectRequestShape(t *testing.T) {
	f := newFakeAS(t)
	var form url.Values
	var auth string
	f.token = func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		_ = r.ParseForm()
		form = r.PostForm
		jsonAnswer(200, `{"access_token":"rpt-1","token_type":"bearer","expires_in":300,"pct":"pct-1","upgraded":true}`)(w, r)
	}
	rpt, err := f.client(t).RPT(context.Background(), &umaclient.Challenge{ASURI: f.URL, Ticket: "tk"},
		umaclient.Options{ClaimToken: "idt", PCT: "p", RPT: "old", Scope: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if rpt.AccessToken != "rpt-1" || rpt.ExpiresIn != 300 || rpt.PCT != "pct-1" || !rpt.Upgraded {
		t.Fatalf("%+v", rpt)
	}
	want := url.Values{"grant_type": {umaclient.GrantTypeUMATicket}, "ticket": {"tk"}, "claim_token": {"idt"},
		"claim_token_format": {umaclient.ClaimTokenFormatIDToken}, "pct": {"p"}, "rpt": {"old"}, "scope": {"a b"}}
	if fmt.Sprint(form) != fmt.Sprint(want) {
		t.Fatalf("form %v", form)
	}
	if auth != "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape("client:1")+":"+url.QueryEscape(fakeSecret))) {
		t.Fatalf("authorization %q", auth)
	}
}

// TestDirectHostileAS: redirects are not followed, bodies are bounded,
// the discovery document must name the issuer asked for and a usable
// token endpoint, AS errors are typed, a need_info that repeats the ticket
// is refused, and no error carries the client secret or a token.
func TestDirectHostileAS(t *testing.T) {
	huge := `{"access_token":"` + strings.Repeat("x", 300<<10) + `","token_type":"Bearer"}`
	cases := []struct {
		name      string
		discovery func(w http.ResponseWriter, r *http.Request, issuer string)
		token     func(w http.ResponseWriter, r *http.Request)
		want      error
		check     func(t *testing.T, err error)
	}{
		{name: "discovery redirect", discovery: func(w http.ResponseWriter, r *http.Request, _ string) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, want: umaclient.ErrDiscovery},
		{name: "discovery 500", discovery: func(w http.ResponseWriter, _ *http.Request, _ string) {
			http.Error(w, "down", 500)
		}, want: umaclient.ErrDiscovery},
		{name: "discovery names another issuer", discovery: func(w http.ResponseWriter, _ *http.Request, _ string) {
			jsonAnswer(200, `{"issuer":"https://other.example","token_endpoint":"https://other.example/token"}`)(w, nil)
		}, want: umaclient.ErrDiscovery},
		{name: "token endpoint on plain http elsewhere", discovery: func(w http.ResponseWriter, _ *http.Request, iss string) {
			jsonAnswer(200, `{"issuer":"`+iss+`","token_endpoint":"http://token.example/token"}`)(w, nil)
		}, want: umaclient.ErrDiscovery},
		{name: "discovery too large", discovery: func(w http.ResponseWriter, _ *http.Request, _ string) {
			jsonAnswer(200, huge)(w, nil)
		}, want: umaclient.ErrDiscovery},
		{name: "discovery not JSON", discovery: func(w http.ResponseWriter, _ *http.Request, _ string) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>")
		}, want: umaclient.ErrDiscovery},
		{name: "token redirect", token: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, want: umaclient.ErrTokenEndpoint},
		{name: "token too large", token: jsonAnswer(200, huge), want: umaclient.ErrTokenEndpoint},
		{name: "token without access_token", token: jsonAnswer(200, `{"token_type":"Bearer"}`), want: umaclient.ErrTokenEndpoint},
		{name: "token of another type", token: jsonAnswer(200, `{"access_token":"a","token_type":"mac"}`), want: umaclient.ErrTokenEndpoint},
		{name: "error without body", token: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) }, want: umaclient.ErrTokenEndpoint},
		{name: "need_info repeating the ticket", token: jsonAnswer(403, `{"error":"need_info","ticket":"tk","redirect_user":"https://as.example/claims"}`), want: umaclient.ErrTokenEndpoint},
		{name: "need_info without ticket", token: jsonAnswer(403, `{"error":"need_info","required_claims":[{"name":"x"}]}`), want: umaclient.ErrTokenEndpoint},
		{name: "request_submitted", token: jsonAnswer(403, `{"error":"request_submitted","ticket":"tk2","interval":7}`), want: umaclient.ErrRequestSubmitted,
			check: func(t *testing.T, err error) {
				var ae *umaclient.Error
				if !errors.As(err, &ae) || ae.Ticket != "tk2" || ae.Interval != 7 || ae.Challenge().Ticket != "tk2" {
					t.Fatalf("%+v", ae)
				}
			}},
		{name: "invalid_scope", token: jsonAnswer(400, `{"error":"invalid_scope","error_description":"no\nsuch scope"}`), want: umaclient.ErrInvalidScope,
			check: func(t *testing.T, err error) {
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("control character in %q", err)
				}
			}},
		{name: "need_info with a javascript redirect_user", token: jsonAnswer(403, `{"error":"need_info","ticket":"tk3","redirect_user":"javascript:alert(1)"}`), want: umaclient.ErrNeedInfo,
			check: func(t *testing.T, err error) {
				var ae *umaclient.Error
				if !errors.As(err, &ae) || ae.RedirectUser != "" || ae.Ticket != "tk3" {
					t.Fatalf("%+v", ae)
				}
			}},
		{name: "invalid_client", token: jsonAnswer(401, `{"error":"invalid_client","error_description":"bad"}`), want: &umaclient.Error{Code: "invalid_client"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAS(t)
			if tc.discovery != nil {
				f.discovery = tc.discovery
			}
			f.token = tc.token
			if f.token == nil {
				f.token = jsonAnswer(200, `{"access_token":"a","token_type":"Bearer"}`)
			}
			_, err := f.client(t).RPT(context.Background(), &umaclient.Challenge{ASURI: f.URL, Ticket: "tk"}, umaclient.Options{ClaimToken: "pushed-idt"})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			for _, s := range []string{fakeSecret, url.QueryEscape(fakeSecret), "pushed-idt", `"tk"`, "tk2", "tk3"} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("error %q contains %q", err, s)
				}
			}
			if tc.check != nil {
				tc.check(t, err)
			}
		})
	}
}

// TestDirectDiscoveryCached: the discovery document is fetched once per
// issuer.
func TestDirectDiscoveryCached(t *testing.T) {
	f := newFakeAS(t)
	var n atomic.Int32
	inner := f.discovery
	f.discovery = func(w http.ResponseWriter, r *http.Request, iss string) { n.Add(1); inner(w, r, iss) }
	f.token = jsonAnswer(200, `{"access_token":"a","token_type":"Bearer"}`)
	c := f.client(t)
	for i := range 3 {
		if _, err := c.RPT(context.Background(), &umaclient.Challenge{ASURI: f.URL, Ticket: fmt.Sprint("t", i)}, umaclient.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() != 1 || f.tokenHits.Load() != 3 {
		t.Fatalf("%d discovery, %d token", n.Load(), f.tokenHits.Load())
	}
}

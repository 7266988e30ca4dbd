package umaclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdclient/umaclient"
)

// answerTransport is an oxd that answers every command with err.
type answerTransport struct{ err error }

func (a answerTransport) Do(context.Context, string, any, any) error { return a.err }

// TestOxdNeedInfoHostileRedirectUser: the need_info answer that oxd passes
// through from the AS is held to the same rule as a direct one: a
// redirect_user the user could not safely be sent to (javascript:, data:,
// plain http elsewhere, relative, user information) is dropped, on both
// paths alike.
func TestOxdNeedInfoHostileRedirectUser(t *testing.T) {
	for _, ru := range []string{
		"javascript:alert(document.cookie)",
		"JavaScript:alert(1)",
		"data:text/html,<script>alert(1)</script>",
		"http://as.example/claims",
		"//evil.example/claims",
		"/claims",
		"https://user:pw@evil.example/claims",
		"vbscript:msgbox(1)",
	} {
		details, _ := json.Marshal(map[string]any{"error": "need_info", "ticket": "new-ticket", "redirect_user": ru,
			"required_claims": []map[string]any{{"name": "country"}}})
		oc := oxdclient.New(answerTransport{&oxdclient.Error{Code: oxdclient.CodeNeedInfo, Description: "need info", Details: details}}, oxdclient.Config{})
		uc, err := umaclient.New(umaclient.Config{Issuers: []string{"https://as.example"}, Oxd: oc, OxdID: "site"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = uc.RPT(context.Background(), &umaclient.Challenge{ASURI: "https://as.example", Ticket: "old-ticket"}, umaclient.Options{})
		var ae *umaclient.Error
		if !errors.Is(err, umaclient.ErrNeedInfo) || !errors.As(err, &ae) {
			t.Fatalf("%q: %v", ru, err)
		}
		if ae.RedirectUser != "" {
			t.Errorf("redirect_user %q passed through oxd unchecked", ae.RedirectUser)
		}
		if ae.Ticket != "new-ticket" || len(ae.RequiredClaims) != 1 {
			t.Errorf("%+v", ae)
		}
	}
	// A usable one is kept.
	details := []byte(`{"error":"need_info","ticket":"t2","redirect_user":"https://as.example/claims?id=1"}`)
	oc := oxdclient.New(answerTransport{&oxdclient.Error{Code: oxdclient.CodeNeedInfo, Details: details}}, oxdclient.Config{})
	uc, _ := umaclient.New(umaclient.Config{Issuers: []string{"https://as.example"}, Oxd: oc, OxdID: "site"})
	_, err := uc.RPT(context.Background(), &umaclient.Challenge{ASURI: "https://as.example", Ticket: "t1"}, umaclient.Options{})
	var ae *umaclient.Error
	if !errors.As(err, &ae) || ae.RedirectUser != "https://as.example/claims?id=1" {
		t.Fatalf("%v", err)
	}
}

// TestChallengeSmuggling: parameters of another challenge, quoted text that
// looks like a challenge, and escapes do not produce or alter the UMA
// challenge.
func TestChallengeSmuggling(t *testing.T) {
	good := `UMA realm="r", as_uri="https://as.example", ticket="t1"`
	cases := map[string]struct {
		values []string
		ok     bool
		asURI  string
		ticket string
	}{
		"quoted challenge inside Bearer realm": {values: []string{`Bearer realm="x, UMA as_uri=\"https://evil.example\", ticket=\"t\""`}},
		"second UMA in another header":         {values: []string{good, `uma as_uri="https://evil.example", ticket="t2"`}},
		"second UMA in the same header":        {values: []string{good + `, UMA as_uri="https://evil.example", ticket="t2"`}},
		"duplicate as_uri in other case":       {values: []string{`UMA as_uri="https://as.example", AS_URI="https://evil.example", ticket="t"`}},
		"bad header elsewhere refuses all":     {values: []string{good, `Bearer realm="unterminated`}},
		"CRLF in quoted value":                 {values: []string{"UMA as_uri=\"https://as.example\r\nX: y\", ticket=\"t\""}},
		"NUL in quoted value":                  {values: []string{"UMA as_uri=\"https://as.example\x00.evil\", ticket=\"t\""}},
		"escaped backslash userinfo":           {values: []string{`UMA as_uri="https://as.example\\@evil.example", ticket="t"`}},
		"percent-encoded at":                   {values: []string{`UMA as_uri="https://as.example%40evil.example", ticket="t"`}},
		"javascript as_uri":                    {values: []string{`UMA as_uri="javascript://as.example/%0aalert(1)", ticket="t"`}},
		"http on a localhost lookalike":        {values: []string{`UMA as_uri="http://localhost.evil.example", ticket="t"`}},
		"http on .localhost name":              {values: []string{`UMA as_uri="http://a.localhost", ticket="t"`}},
		"http on 127.1 short form":             {values: []string{`UMA as_uri="http://127.1", ticket="t"`}},
		"http on decimal loopback":             {values: []string{`UMA as_uri="http://2130706433", ticket="t"`}},
		"http on IPv4-mapped":                  {values: []string{`UMA as_uri="http://[::ffff:10.0.0.1]", ticket="t"`}},
		"ticket with tab":                      {values: []string{"UMA as_uri=\"https://as.example\", ticket=\"a\tb\""}},
		"empty ticket":                         {values: []string{`UMA as_uri="https://as.example", ticket=""`}},
		"token68":                              {values: []string{`UMA abc==`}},
		"escaped quote kept inside":            {values: []string{`Bearer error="a\"b", UMA as_uri="https://as.example", ticket="t\"x"`}, ok: true, asURI: "https://as.example", ticket: `t"x`},
		"other schemes around":                 {values: []string{`Basic realm="x", ` + good + `, Bearer`}, ok: true, asURI: "https://as.example", ticket: "t1"},
	}
	for name, tc := range cases {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add("WWW-Authenticate", v)
		}
		ch, err := umaclient.ParseChallenge(h)
		if tc.ok {
			if err != nil || ch.ASURI != tc.asURI || ch.Ticket != tc.ticket {
				t.Errorf("%s: %+v %v", name, ch, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted %+v", name, ch)
			continue
		}
		if strings.Contains(err.Error(), "evil") {
			t.Errorf("%s: error quotes a value: %v", name, err)
		}
	}
}

// TestDirectNoDowngradeToPlainHTTP: an authorization server reached over
// https whose discovery document names a plain-http token endpoint (on
// loopback, which http is otherwise allowed for) does not get the client
// credentials, ticket and claim token sent in clear to a local port.
func TestDirectNoDowngradeToPlainHTTP(t *testing.T) {
	var plainHits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"a","token_type":"Bearer"}`)
	}))
	defer plain.Close()
	var as *httptest.Server
	as = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"token_endpoint":%q}`, as.URL, plain.URL+"/token")
	}))
	defer as.Close()
	uc, err := umaclient.New(umaclient.Config{Issuers: []string{as.URL}, ClientID: "c", ClientSecret: fakeSecret, HTTPClient: as.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = uc.RPT(context.Background(), &umaclient.Challenge{ASURI: as.URL, Ticket: "tk"}, umaclient.Options{ClaimToken: "idt"})
	if !errors.Is(err, umaclient.ErrDiscovery) || plainHits.Load() != 0 {
		t.Fatalf("err %v, %d requests in clear", err, plainHits.Load())
	}
}

// TestDirectScopeInjection: Options.Scope entries are scope tokens; one
// holding a space (which would add scopes to the request), a quote, a
// backslash or a control character is refused before anything is sent.
func TestDirectScopeInjection(t *testing.T) {
	f := newFakeAS(t)
	f.token = jsonAnswer(200, `{"access_token":"a","token_type":"Bearer"}`)
	c := f.client(t)
	for _, sc := range [][]string{{"view admin"}, {"view", ""}, {"a\"b"}, {"a\\b"}, {"a\nb"}, {"a\tb"}, {"é"}} {
		_, err := c.RPT(context.Background(), &umaclient.Challenge{ASURI: f.URL, Ticket: "tk"}, umaclient.Options{Scope: sc})
		if err == nil {
			t.Errorf("scope %q accepted", sc)
		}
	}
	if n := f.tokenHits.Load(); n != 0 {
		t.Fatalf("%d token requests sent with bad scopes", n)
	}
	if _, err := c.RPT(context.Background(), &umaclient.Challenge{ASURI: f.URL, Ticket: "tk"}, umaclient.Options{Scope: []string{"view", "photos:read"}}); err != nil {
		t.Fatal(err)
	}
}

package oxdserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/oxdgo/oxd/oxdclient"
)

// httpsFixture is one exchange of reference/fixtures/https-extension-3.1/
// (bodies compacted, keys in the fixture's order).
type httpsFixture struct {
	name, path, auth, body string
	status                 int
	want                   string
}

var httpsFixtures = []httpsFixture{
	{
		name:   "setup-client",
		path:   "/setup-client",
		auth:   "",
		body:   `{"op_host":"https://ce-dev3.gluu.org","authorization_redirect_uri":"https://client.example.org/","scope":["openid","profile","email","uma_protection"],"grant_types":["authorization_code","client_credentials"]}`,
		status: 200,
		want:   `{"status":"ok","data":{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6","client_id_of_oxd_id":"@!1736.179E.AA60.16B2!0001!8F7C.B9AB!0008!A2BB.9AE6.AAA4","op_host":"https://ce-dev3.gluu.org","setup_client_oxd_id":"6F9619FF-8B86-D011-B42D-00CF4FC964FF","client_id":"@!1736.179E.AA60.16B2!0001!8F7C.B9AB!0008!A2BB.9AE6.5F14.B387","client_secret":"f436b936-03fc-433f-9772-53c2bc9e1c74","client_registration_access_token":"d836df94-44b0-445a-848a-d43189839b17","client_registration_client_uri":"https://ce-dev3.gluu.org/oxauth/restv1/register?client_id=@!1736.179E.AA60.16B2!0001!8F7C.B9AB!0008!A2BB.9AE6.5F14.B387","client_id_issued_at":1501854943,"client_secret_expires_at":1501941343}}`,
	},
	{
		name:   "get-client-token",
		path:   "/get-client-token",
		auth:   "",
		body:   `{"op_host":"https://ce-dev3.gluu.org","client_id":"@!1736.179E.AA60.16B2!0001!8F7C.B9AB!0008!A2BB.9AE6.5F14.B387","client_secret":"f436b936-03fc-433f-9772-53c2bc9e1c74","scope":["openid","oxd","uma_protection"]}`,
		status: 200,
		want:   `{"status":"ok","data":{"scope":"openid oxd uma_protection","access_token":"b75434ff-f465-4b70-92e4-b7ba6b6c58f2","expires_in":299,"refresh_token":null}}`,
	},
	{
		name:   "register-site",
		path:   "/register-site",
		auth:   "Bearer b75434ff-f465-4b70-92e4-b7ba6b6c58f2",
		body:   `{"op_host":"https://ce-dev3.gluu.org","authorization_redirect_uri":"https://client.example.org/cb","scope":["openid","profile","email"]}`,
		status: 200,
		want:   `{"status":"ok","data":{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6","op_host":"https://ce-dev3.gluu.org"}}`,
	},
	{
		name:   "get-authorization-url",
		path:   "/get-authorization-url",
		auth:   "Bearer b75434ff-f465-4b70-92e4-b7ba6b6c58f2",
		body:   `{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6","scope":["openid","profile","email"]}`,
		status: 200,
		want:   `{"status":"ok","data":{"authorization_url":"https://ce-dev3.gluu.org/oxauth/restv1/authorize?response_type=code&client_id=@!1736.179E.AA60.16B2!0001!8F7C.B9AB!0008!A2BB.9AE6.5F14.B387&redirect_uri=https://client.example.org/cb&scope=openid+profile+email&state=473ot4nuqb4ubeokc139raur13&nonce=lbrdgorr974q66q6q9g454iccm"}}`,
	},
	{
		name:   "uma-rp-get-rpt.need-info",
		path:   "/uma-rp-get-rpt",
		auth:   "Bearer b75434ff-f465-4b70-92e4-b7ba6b6c58f2",
		body:   `{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6","ticket":"016f84e8-f9b9-11e0-bd6f-0021cc6004de"}`,
		status: 200,
		want:   `{"status":"error","data":{"error":"need_info","error_description":"The authorization server needs additional information in order to determine whether the client is authorized to have these permissions.","details":{"error":"need_info","required_claims":[{"claim_token_format":["http://openid.net/specs/openid-connect-core-1_0.html#IDToken"],"claim_type":"urn:oid:0.9.2342.19200300.100.1.3","friendly_name":"email","issuer":["https://example.com/idp"],"name":"email23423453ou453"}],"redirect_user":"https://as.example.com/rqp_claims?id=2346576421","ticket":"ZXJyb3JfZGV0YWlscw=="}}}`,
	},
	{
		name:   "uma-rs-check-access.denied",
		path:   "/uma-rs-check-access",
		auth:   "Bearer b75434ff-f465-4b70-92e4-b7ba6b6c58f2",
		body:   `{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6","rpt":"","path":"/posts","http_method":"GET"}`,
		status: 200,
		want:   `{"status":"ok","data":{"access":"denied","ticket":"d8d9f335-d44e-4854-9cca-abb73755bda8","www-authenticate_header":"UMA realm=\"rs\",as_uri=\"https://gluu.local.org\",error=\"insufficient_scope\",ticket=\"d8d9f335-d44e-4854-9cca-abb73755bda8\""}}`,
	},
	{
		name:   "uma-rs-check-access.not-protected",
		path:   "/uma-rs-check-access",
		auth:   "Bearer b75434ff-f465-4b70-92e4-b7ba6b6c58f2",
		body:   `{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6","rpt":"","path":"/posts","http_method":"GET"}`,
		status: 200,
		want:   `{"status":"error","data":{"error":"invalid_request","error_description":"Resource is not protected with path: /posts and httpMethod: GET. Please protect your resource first with uma_rs_protect command. Check details on https://gluu.org/docs/oxd","details":null}}`,
	},
	{
		name:   "as-http-error-passthrough",
		path:   "/uma-rp-get-rpt",
		auth:   "Bearer b75434ff-f465-4b70-92e4-b7ba6b6c58f2",
		body:   `{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6","ticket":"expired"}`,
		status: 400,
		want:   `{"code":400,"message":"{\"error\":\"invalid_ticket\",\"error_description\":\"Ticket is not valid (outdated or not present on Authorization Server).\"}"}`,
	},
	{
		name:   "missing-authorization-header",
		path:   "/get-user-info",
		auth:   "",
		body:   `{"oxd_id":"bcad760f-91ba-46e1-a020-05e4281d91b6","access_token":"x"}`,
		status: 403,
		want:   `{"code":403,"message":"{\"status\":\"error\",\"data\":{\"error\":\"403\",\"error_description\":\"Forbidden Access\",\"details\":null}}"}`,
	},
}

// funcExec is an engine made of a function; it records the requests.
type funcExec struct {
	mu          sync.Mutex
	reqs        []Request
	reply       func(Request) (any, error)
	unprotected bool // as an engine with Config.InsecureNoProtection
}

func (f *funcExec) Protected() bool { return !f.unprotected }

func (f *funcExec) Execute(_ context.Context, req Request) (any, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	return f.reply(req)
}

func (f *funcExec) requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.reqs...)
}

// fixtureReply answers what oxd answered in the fixture: the ok data
// verbatim, the error of an error envelope, or the http_status_<N> error
// behind a Dropwizard error body.
func fixtureReply(t *testing.T, fx httpsFixture) func(Request) (any, error) {
	return func(Request) (any, error) {
		if fx.status != http.StatusOK {
			var dw struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(fx.want), &dw); err != nil {
				t.Errorf("fixture %s: %v", fx.name, err)
			}
			return nil, &oxdclient.Error{Code: "http_status_" + strconv.Itoa(dw.Code), Description: dw.Message}
		}
		var env struct {
			Status string          `json:"status"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(fx.want), &env); err != nil {
			t.Errorf("fixture %s: %v", fx.name, err)
		}
		if env.Status == "ok" {
			return env.Data, nil
		}
		var e struct {
			Error       string          `json:"error"`
			Description string          `json:"error_description"`
			Details     json.RawMessage `json:"details"`
		}
		_ = json.Unmarshal(env.Data, &e)
		return nil, &oxdclient.Error{Code: e.Error, Description: e.Description, Details: e.Details}
	}
}

func doHTTPS(t *testing.T, h http.Handler, method, path, auth, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHTTPSFixtures(t *testing.T) {
	for _, fx := range httpsFixtures {
		t.Run(fx.name, func(t *testing.T) {
			ex := &funcExec{reply: fixtureReply(t, fx)}
			h := newHTTPSHandler(ex, HTTPSConfig{})
			rec := doHTTPS(t, h, http.MethodPost, fx.path, fx.auth, "application/json", fx.body)
			if rec.Code != fx.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, fx.status, rec.Body)
			}
			if got := rec.Body.String(); got != fx.want {
				t.Fatalf("body\n got %s\nwant %s", got, fx.want)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			reqs := ex.requests()
			if fx.status == http.StatusForbidden {
				if len(reqs) != 0 {
					t.Fatalf("engine called without authorization")
				}
				return
			}
			if len(reqs) != 1 {
				t.Fatalf("%d engine calls", len(reqs))
			}
			r := reqs[0]
			wantCmd := strings.ReplaceAll(strings.TrimPrefix(fx.path, "/"), "-", "_")
			if r.Command != wantCmd || string(r.Params) != fx.body {
				t.Fatalf("engine got %+v", r)
			}
			if tok, _ := strings.CutPrefix(fx.auth, "Bearer "); r.ProtectionToken != tok {
				t.Fatalf("token %q, want %q", r.ProtectionToken, tok)
			}
		})
	}
}

func TestHTTPSHealthCheck(t *testing.T) {
	h := newHTTPSHandler(&funcExec{reply: func(Request) (any, error) { t.Error("engine called"); return nil, nil }}, HTTPSConfig{})
	rec := doHTTPS(t, h, http.MethodGet, "/health-check", "", "", "")
	if rec.Code != 200 || rec.Body.String() != "running" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q %q", rec.Code, rec.Body, rec.Header())
	}
	rec = doHTTPS(t, h, http.MethodPost, "/health-check", "", "application/json", "{}")
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /health-check: %d %q", rec.Code, rec.Header())
	}
}

func TestHTTPSStatusTable(t *testing.T) {
	okExec := func() *funcExec {
		return &funcExec{reply: func(r Request) (any, error) {
			switch r.Command {
			case "get_user_info":
				return map[string]any{"claims": map[string][]string{"name": {"Jürgen <x> & y"}}}, nil
			case "remove_site":
				panic("scripted")
			case "update_site":
				return nil, errors.New("not an oxd error")
			case "uma_rp_get_rpt":
				return nil, &oxdclient.Error{Code: "http_status_302", Description: "moved"}
			}
			return nil, &oxdclient.Error{Code: oxdclient.CodeInvalidOxdID, Description: "unknown"}
		}}
	}
	const tok = "Bearer b75434ff-f465-4b70-92e4-b7ba6b6c58f2"
	cases := []struct {
		name, method, path, auth, ctype, body string
		cfg                                   HTTPSConfig
		status                                int
		want                                  string // exact body, or prefix when it ends with "…"
		calls                                 int
	}{
		{"unknown path", "POST", "/get-rp", tok, "application/json", `{}`, HTTPSConfig{}, 404, `{"code":404,"message":"HTTP 404 Not Found"}`, 0},
		{"underscore path", "POST", "/get_user_info", tok, "application/json", `{}`, HTTPSConfig{}, 404, `{"code":404,"message":"HTTP 404 Not Found"}`, 0},
		{"GET on a command", "GET", "/get-user-info", tok, "", ``, HTTPSConfig{}, 405, `{"code":405,"message":"HTTP 405 Method Not Allowed"}`, 0},
		{"PUT on a command", "PUT", "/setup-client", "", "application/json", `{}`, HTTPSConfig{}, 405, `{"code":405,"message":"HTTP 405 Method Not Allowed"}`, 0},
		{"blank bearer", "POST", "/get-user-info", "Bearer  ", "application/json", `{}`, HTTPSConfig{}, 403, feForbiddenBody, 0},
		{"lower-case scheme", "POST", "/get-user-info", "bearer x", "application/json", `{}`, HTTPSConfig{}, 403, feForbiddenBody, 0},
		{"basic scheme", "POST", "/uma-rs-protect", "Basic eDp5", "application/json", `{}`, HTTPSConfig{}, 403, feForbiddenBody, 0},
		{"token only in body", "POST", "/register-site", "", "application/json", `{"protection_access_token":"x"}`, HTTPSConfig{}, 403, feForbiddenBody, 0},
		{"unprotected path without header", "POST", "/setup-client", "", "application/json", `{"op_host":"x"}`, HTTPSConfig{}, 200, `{"status":"error","data":{"error":"invalid_oxd_id","error_description":"unknown","details":null}}`, 1},
		{"protection off", "POST", "/get-user-info", "", "application/json", `{}`, HTTPSConfig{}, 200, `{"status":"ok","data":{"claims":{"name":["Jürgen <x> & y"]}}}`, 1},
		{"invalid JSON", "POST", "/get-user-info", tok, "application/json", `{not json`, HTTPSConfig{}, 400, `Invalid parameters. Message: …`, 0},
		{"JSON array", "POST", "/get-user-info", tok, "application/json", `[]`, HTTPSConfig{}, 400, `Invalid parameters. Message: …`, 0},
		{"empty body", "POST", "/get-user-info", tok, "application/json", ``, HTTPSConfig{}, 400, `Invalid parameters. Message: …`, 0},
		{"no content type", "POST", "/get-user-info", tok, "", `{}`, HTTPSConfig{}, 415, `{"code":415,"message":"HTTP 415 Unsupported Media Type"}`, 0},
		{"form content type", "POST", "/setup-client", "", "application/x-www-form-urlencoded", `a=b`, HTTPSConfig{}, 415, `{"code":415,"message":"HTTP 415 Unsupported Media Type"}`, 0},
		{"json with charset", "POST", "/get-user-info", tok, "application/json; charset=utf-8", `{}`, HTTPSConfig{}, 200, `{"status":"ok","data":{"claims":{"name":["Jürgen <x> & y"]}}}`, 1},
		{"body too large", "POST", "/get-user-info", tok, "application/json", `{"a":"` + strings.Repeat("x", 100) + `"}`, HTTPSConfig{MaxBody: 64}, 413, `{"code":413,"message":"HTTP 413 Request Entity Too Large"}`, 0},
		{"engine panic", "POST", "/remove-site", tok, "application/json", `{}`, HTTPSConfig{}, 200, feGenericInternalError, 1},
		{"engine plain error", "POST", "/update-site", tok, "application/json", `{}`, HTTPSConfig{}, 200, feGenericInternalError, 1},
		{"http_status below 400", "POST", "/uma-rp-get-rpt", tok, "application/json", `{}`, HTTPSConfig{}, 502, `{"code":502,"message":"moved"}`, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ex := okExec()
			ex.unprotected = tc.name == "protection off"
			h := newHTTPSHandler(ex, tc.cfg)
			rec := doHTTPS(t, h, tc.method, tc.path, tc.auth, tc.ctype, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			got := rec.Body.String()
			if p, ok := strings.CutSuffix(tc.want, "…"); ok {
				if !strings.HasPrefix(got, p) || len(got) == len(p) {
					t.Fatalf("body %q, want prefix %q", got, p)
				}
			} else if got != tc.want {
				t.Fatalf("body\n got %s\nwant %s", got, tc.want)
			}
			if n := len(ex.requests()); n != tc.calls {
				t.Fatalf("%d engine calls, want %d", n, tc.calls)
			}
			if rec.Code == 405 && rec.Header().Get("Allow") != "POST" {
				t.Fatalf("Allow %q", rec.Header().Get("Allow"))
			}
		})
	}
}

func TestHTTPSTokenAndProtectFlag(t *testing.T) {
	ex := &funcExec{reply: func(Request) (any, error) { return map[string]string{}, nil }}
	h := newHTTPSHandler(ex, HTTPSConfig{})
	doHTTPS(t, h, "POST", "/get-authorization-url", "Bearer  header-token ", "application/json", `{"oxd_id":"x","protection_access_token":"body-token"}`)
	doHTTPS(t, h, "POST", "/get-client-token", "", "application/json", `{"protection_access_token":"body-token"}`)
	offEx := &funcExec{reply: ex.reply, unprotected: true}
	off := newHTTPSHandler(offEx, HTTPSConfig{})
	doHTTPS(t, off, "POST", "/get-user-info", "Bearer t2", "application/json", `{}`)
	r := append(ex.requests(), offEx.requests()...)
	if len(r) != 3 {
		t.Fatalf("%d calls", len(r))
	}
	// The header's token replaces the body's: the engine is told so.
	if r[0].ProtectionToken != "header-token" || r[0].Command != "get_authorization_url" {
		t.Fatalf("call 0: %+v", r[0])
	}
	if r[1].ProtectionToken != "" {
		t.Fatalf("call 1: %+v", r[1])
	}
	if r[2].ProtectionToken != "t2" {
		t.Fatalf("call 2: %+v", r[2])
	}
}

func TestHTTPSAllPaths(t *testing.T) {
	ex := &funcExec{reply: func(r Request) (any, error) { return map[string]string{"command": r.Command}, nil }}
	h := newHTTPSHandler(ex, HTTPSConfig{})
	paths := []string{"/setup-client", "/get-client-token", "/register-site", "/update-site", "/remove-site",
		"/get-authorization-url", "/get-tokens-by-code", "/get-user-info", "/get-logout-uri",
		"/get-access-token-by-refresh-token", "/introspect-access-token", "/introspect-rpt", "/uma-rs-protect",
		"/uma-rs-check-access", "/uma-rp-get-rpt", "/uma-rp-get-claims-gathering-url", "/revoke-token", "/get-client-jwks"}
	if len(paths) != len(httpsRoutes) {
		t.Fatalf("%d routes, want %d", len(httpsRoutes), len(paths))
	}
	for _, p := range paths {
		unprotected := p == "/setup-client" || p == "/get-client-token"
		rec := doHTTPS(t, h, "POST", p, "", "application/json", `{}`)
		if unprotected != (rec.Code == 200) || !unprotected && rec.Code != 403 {
			t.Errorf("%s without Authorization: %d", p, rec.Code)
		}
		rec = doHTTPS(t, h, "POST", p, "Bearer t", "application/json", `{}`)
		want := `{"status":"ok","data":{"command":"` + strings.ReplaceAll(p[1:], "-", "_") + `"}}`
		if rec.Code != 200 || rec.Body.String() != want {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body)
		}
	}
}

func TestHTTPSNilEngine(t *testing.T) {
	h := NewHTTPSHandler(nil, HTTPSConfig{})
	rec := doHTTPS(t, h, "POST", "/get-user-info", "Bearer x", "application/json", `{}`)
	if rec.Code != 500 || rec.Body.String() != "Command client is not able to connect to oxd-server." {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestHTTPSWithEngine(t *testing.T) {
	e, err := New(Config{InsecureAllowLoopbackHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h := NewHTTPSHandler(e, HTTPSConfig{})
	const tok = "Bearer b75434ff-f465-4b70-92e4-b7ba6b6c58f2"
	for _, tc := range []struct{ name, path, body, want string }{
		{"null body", "/get-user-info", `null`, fxNoParamsResponse},
		{"ill-typed params", "/get-authorization-url", `{"oxd_id":["x"]}`, fxNoParamsResponse},
		{"blank oxd_id", "/get-logout-uri", `{"oxd_id":" "}`, fxBlankOxdIDResponse},
		{"unknown oxd_id", "/uma-rs-check-access", `{"oxd_id":"nope","rpt":"","path":"/p","http_method":"GET"}`, fxInvalidOxdIDResponse},
	} {
		rec := doHTTPS(t, h, "POST", tc.path, tok, "application/json", tc.body)
		if rec.Code != 200 || rec.Body.String() != tc.want {
			t.Errorf("%s: %d %s", tc.name, rec.Code, rec.Body)
		}
	}
}

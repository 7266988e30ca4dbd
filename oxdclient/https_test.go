package oxdclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// withoutKey returns params JSON without one top-level key.
func withoutKey(t testing.TB, b []byte, key string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, key)
	out, _ := json.Marshal(m)
	return out
}

// TestHTTPSEveryCommand sends every request fixture over the HTTPS
// extension: POST /<command-with-dashes>, bare params without the token,
// "Authorization: Bearer <token>", answers decoded from the envelope.
func TestHTTPSEveryCommand(t *testing.T) {
	var mu sync.Mutex
	var wantParams []byte
	var wantToken, answer string
	fake := newFakeHTTPS(t, func(command string, params json.RawMessage, token string, r *http.Request) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Content-Type") != "application/json" || !sameParams(t, params, wantParams) || token != wantToken {
			return 200, `{"status":"error","data":{"error":"test_mismatch","error_description":"unexpected request","details":null}}`
		}
		return 200, answer
	})
	c := New(fake.transport(t, HTTPSConfig{}), Config{})
	n := 0
	for _, tc := range socketCases {
		cmd, params := fixtureRequest(t, "socket-3.1/"+tc.request)
		if cmd == CmdGetRP {
			continue // no REST path in the extension
		}
		var p struct {
			Token string `json:"protection_access_token"`
		}
		_ = json.Unmarshal(params, &p)
		mu.Lock()
		wantParams, wantToken = withoutKey(t, params, "protection_access_token"), p.Token
		answer = string(readFixture(t, "socket-3.1/"+tc.response))
		mu.Unlock()
		res, err := callCommand(context.Background(), c, cmd, params)
		if p.Token == "" && !unprotectedHTTPS[cmd] {
			// The extension refuses a protected command without a token.
			if e := asOxdError(t, err); e.Code != CodeForbidden {
				t.Fatalf("%s: %v", tc.request, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.request, err)
		}
		want, _ := decodeFixture(t, cmd, "socket-3.1/"+tc.response)
		if !reflect.DeepEqual(res, want) {
			t.Fatalf("%s: answer %+v, want %+v", tc.request, res, want)
		}
		reqs := fake.Requests()
		last := reqs[len(reqs)-1]
		if last.Method != http.MethodPost || last.Path != "/"+strings.ReplaceAll(cmd, "_", "-") {
			t.Fatalf("%s %s", last.Method, last.Path)
		}
		if strings.Contains(string(last.Body), "protection_access_token") {
			t.Fatalf("%s: token in the body", tc.request)
		}
		if (p.Token == "") != (last.Authorization == "") {
			t.Fatalf("%s: Authorization %q", tc.request, last.Authorization)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d requests", n)
	}
}

type exchange struct {
	Request struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"request"`
	Response struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"response"`
}

// replayServer answers one recorded exchange after checking the request.
func replayServer(t *testing.T, ex exchange, mismatch *[]string) *httptest.Server {
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Method != ex.Request.Method || r.URL.Path != ex.Request.Path {
			*mismatch = append(*mismatch, "method/path "+r.Method+" "+r.URL.Path)
		}
		for _, h := range []string{"Content-Type", "Authorization"} {
			if r.Header.Get(h) != ex.Request.Headers[h] {
				*mismatch = append(*mismatch, h+": "+r.Header.Get(h))
			}
		}
		if r.Method == http.MethodPost && len(ex.Request.Body) > 0 && ex.Request.Body[0] == '{' && !sameParams(t, body, ex.Request.Body) {
			*mismatch = append(*mismatch, "body "+string(body))
		}
		for k, v := range ex.Response.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(ex.Response.Status)
		var text string
		if json.Unmarshal(ex.Response.Body, &text) == nil {
			_, _ = io.WriteString(w, text) // plain-text body
		} else {
			_, _ = w.Write(ex.Response.Body)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestHTTPSExchangeFixtures replays every https-extension-3.1 exchange:
// the request must match it exactly and its answer (envelope or one of the
// extension's error bodies of reference §5) must map to the right result.
func TestHTTPSExchangeFixtures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "https-extension-3.1", "*.json"))
	if len(files) != 13 {
		t.Fatalf("%d exchange fixtures", len(files))
	}
	checks := map[string]func(t *testing.T, res any, err error){
		"setup-client.json":               okResult,
		"get-client-token.json":           okResult,
		"register-site.json":              okResult,
		"get-authorization-url.json":      okResult,
		"uma-rs-check-access.denied.json": okResult,
		"uma-rp-get-rpt.need-info.json": func(t *testing.T, _ any, err error) {
			ni, ok := asOxdError(t, err).NeedInfo()
			if !IsNeedInfo(err) || !ok || ni.Ticket != "ZXJyb3JfZGV0YWlscw==" {
				t.Fatalf("%v", err)
			}
		},
		"uma-rs-check-access.not-protected.json": func(t *testing.T, _ any, err error) {
			if e := asOxdError(t, err); e.Code != CodeInvalidRequest || !strings.HasPrefix(e.Description, "Resource is not protected with path: /posts") {
				t.Fatalf("%v", err)
			}
		},
		"as-http-error-passthrough.json": func(t *testing.T, _ any, err error) {
			e := asOxdError(t, err)
			if e.Code != "http_status_400" || HTTPStatus(err) != 400 || !strings.HasPrefix(e.Description, `{"error":"invalid_ticket"`) || e.Command != CmdUMARPGetRPT {
				t.Fatalf("%+v", e)
			}
		},
		"missing-authorization-header.json": func(t *testing.T, _ any, err error) {
			e := asOxdError(t, err)
			if e.Code != CodeForbidden || e.Description != "Forbidden Access" || !IsProtectionTokenError(err) {
				t.Fatalf("%+v", e)
			}
		},
		"invalid-json-body.json": func(t *testing.T, _ any, err error) {
			if !errors.Is(err, ErrProtocol) || strings.Contains(err.Error(), "Jackson") {
				t.Fatalf("%v", err)
			}
		},
		"oxd-server-null-response.json": func(t *testing.T, _ any, err error) {
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no answer") {
				t.Fatalf("%v", err)
			}
		},
		"oxd-server-unreachable.json": func(t *testing.T, _ any, err error) {
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "cannot connect to oxd-server") {
				t.Fatalf("%v", err)
			}
		},
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			var ex exchange
			b, _ := os.ReadFile(f)
			if err := json.Unmarshal(b, &ex); err != nil {
				t.Fatal(err)
			}
			var mismatch []string
			srv := replayServer(t, ex, &mismatch)
			h, err := NewHTTPS(srv.URL, HTTPSConfig{HTTPClient: srv.Client()})
			if err != nil {
				t.Fatal(err)
			}
			c := New(h, Config{})
			if name == "health-check.json" {
				if err := h.HealthCheck(context.Background()); err != nil {
					t.Fatal(err)
				}
				return
			}
			check, ok := checks[name]
			if !ok {
				t.Fatal("no check for this exchange")
			}
			params := ex.Request.Body
			if len(params) == 0 || params[0] != '{' {
				params = []byte(`{"oxd_id":"` + testOxdID + `"}`) // the client cannot send invalid JSON
			}
			if tok, ok := strings.CutPrefix(ex.Request.Headers["Authorization"], "Bearer "); ok {
				params = withKey(t, params, "protection_access_token", tok)
			}
			cmd := strings.ReplaceAll(strings.TrimPrefix(ex.Request.Path, "/"), "-", "_")
			res, err := callCommand(context.Background(), c, cmd, params)
			check(t, res, err)
			if ex.Request.Body[0] == '{' && len(mismatch) > 0 {
				t.Fatalf("request differs from the exchange: %v", mismatch)
			}
			if err == nil {
				var env struct{ Data json.RawMessage }
				_ = json.Unmarshal(ex.Response.Body, &env)
				want := reflect.New(reflect.TypeOf(res).Elem()).Interface()
				if err := json.Unmarshal(env.Data, want); err != nil || !reflect.DeepEqual(res, want) {
					t.Fatalf("answer %+v, want %+v", res, want)
				}
			}
		})
	}
}

func okResult(t *testing.T, _ any, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func withKey(t testing.TB, b []byte, key, value string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = value
	out, _ := json.Marshal(m)
	return out
}

// TestHTTPSTLSVerifiedByDefault: the default client verifies certificates
// (the self-signed test certificate is refused); a client whose pool holds
// the certificate works; no global HTTP state is changed.
func TestHTTPSTLSVerifiedByDefault(t *testing.T) {
	defTransport := http.DefaultTransport
	defTLS := http.DefaultTransport.(*http.Transport).TLSClientConfig
	defClient := *http.DefaultClient

	fake := newFakeHTTPS(t, func(string, json.RawMessage, string, *http.Request) (int, string) {
		return 200, `{"status":"ok","data":{"oxd_id":"x"}}`
	})
	h, err := NewHTTPS(fake.srv.URL, HTTPSConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, err = New(h, Config{}).RemoveSite(context.Background(), RemoveSiteParams{OxdID: "x", Protection: Protection{ProtectionAccessToken: "tok"}})
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	if !errors.Is(err, ErrUnavailable) || !(errors.As(err, &verr) || errors.As(err, &uerr)) {
		t.Fatalf("self-signed certificate accepted or wrong error: %v", err)
	}
	if len(fake.Requests()) != 0 {
		t.Fatal("a request reached the server without verification")
	}

	pool := x509.NewCertPool()
	pool.AddCert(fake.srv.Certificate())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	h2, err := NewHTTPS(fake.srv.URL, HTTPSConfig{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := New(h2, Config{}).RemoveSite(context.Background(), RemoveSiteParams{OxdID: "x", Protection: Protection{ProtectionAccessToken: "tok"}}); err != nil || r.OxdID != "x" {
		t.Fatalf("%v", err)
	}
	if hc.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify {
		t.Fatal("caller's client modified")
	}
	if http.DefaultTransport != defTransport || http.DefaultTransport.(*http.Transport).TLSClientConfig != defTLS || !reflect.DeepEqual(*http.DefaultClient, defClient) {
		t.Fatal("global HTTP state changed")
	}
}

// TestHTTPSErrorStatuses covers answers outside the exchange fixtures.
func TestHTTPSErrorStatuses(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		check  func(error) bool
	}{
		{"404 html", 404, "<html>Not Found</html>", func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"502", 502, "bad gateway", func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"500 other text", 500, "boom", func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"500 json-quoted null response", 500, `"Command response is null, please check oxd-server.log file of oxd-server application."`,
			func(err error) bool { return errors.Is(err, ErrUnavailable) }},
		{"dropwizard generic 500", 500, `{"code":500,"message":"There was an error processing your request. It has been logged (ID 1a2b3c)."}`,
			func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"http_status_401 passthrough", 401, `{"code":401,"message":"{\"error\":\"invalid_client\"}"}`,
			func(err error) bool { return HTTPStatus(err) == 401 }},
		{"200 not an envelope", 200, `running`, func(err error) bool { return errors.Is(err, ErrProtocol) }},
		{"200 oversized", 200, `{"status":"ok","data":{"oxd_id":"` + strings.Repeat("x", 2048) + `"}}`,
			func(err error) bool { return errors.Is(err, ErrProtocol) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeHTTPS(t, func(string, json.RawMessage, string, *http.Request) (int, string) { return tc.status, tc.body })
			c := New(fake.transport(t, HTTPSConfig{MaxResponseBytes: 1024}), Config{})
			_, err := c.GetClientToken(context.Background(), GetClientTokenParams{ClientID: "id", ClientSecret: "the-secret", OPHost: "https://op"})
			if err == nil || !tc.check(err) {
				t.Fatalf("%T %v", err, err)
			}
			if strings.Contains(err.Error(), "the-secret") {
				t.Fatal("secret in the error")
			}
		})
	}
}

// TestHTTPSTimeoutAndCancel: the configured timeout and the caller's
// cancellation end a command the extension does not answer.
func TestHTTPSTimeoutAndCancel(t *testing.T) {
	// The extension answers only when the test ends (or after 30s, for a
	// client that would not give up): an answer sent as soon as the client
	// gives up could still reach it (the client's close of the connection
	// races with the answer) and be taken as the result.
	silent := make(chan struct{})
	fake := newFakeHTTPS(t, func(_ string, _ json.RawMessage, _ string, _ *http.Request) (int, string) {
		select {
		case <-silent:
		case <-time.After(30 * time.Second):
		}
		return 200, `{"status":"ok","data":null}`
	})
	t.Cleanup(func() { close(silent) }) // before the server's Close, which waits for its handlers
	h := fake.transport(t, HTTPSConfig{Timeout: 200 * time.Millisecond})
	start := time.Now()
	err := h.Do(context.Background(), CmdGetClientToken, nil, nil)
	if !errors.Is(err, ErrTimeout) || time.Since(start) > 4*time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
	h = fake.transport(t, HTTPSConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if err := h.Do(ctx, CmdGetClientToken, nil, nil); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
}

func TestHTTPSBaseURL(t *testing.T) {
	for _, bad := range []string{"http://127.0.0.1:8443", "ftp://x", "https://user:pw@host", "https://host/?q=1", "https://", "://x"} {
		if _, err := NewHTTPS(bad, HTTPSConfig{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	h, err := NewHTTPS("https://oxd.example:8443/prefix/", HTTPSConfig{})
	if err != nil || h.url(CmdGetUserInfo) != "https://oxd.example:8443/prefix/get-user-info" || h.url(CmdUMARPGetClaimsGatheringURL) != "https://oxd.example:8443/prefix/uma-rp-get-claims-gathering-url" {
		t.Fatalf("%v %s", err, h.url(CmdGetUserInfo))
	}
	// Clear text only with the Insecure switch (here: a loopback test server).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"ok","data":{"oxd_id":"plain"}}`)
	}))
	defer srv.Close()
	h, err = NewHTTPS(srv.URL, HTTPSConfig{InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if r, err := New(h, Config{}).RemoveSite(context.Background(), RemoveSiteParams{OxdID: "x"}); err != nil || r.OxdID != "plain" {
		t.Fatalf("%v", err)
	}
	if err := h.Do(context.Background(), "../admin", nil, nil); !errors.Is(err, ErrProtocol) {
		t.Fatalf("path injection: %v", err)
	}
}

// TestHTTPSTokenOnlyInHeaderParamsUntouched: the token goes in the header,
// not the body, and the caller's params keep it.
func TestHTTPSTokenOnlyInHeaderParamsUntouched(t *testing.T) {
	fake := newFakeHTTPS(t, func(string, json.RawMessage, string, *http.Request) (int, string) {
		return 200, `{"status":"ok","data":{"oxd_id":"x"}}`
	})
	h := fake.transport(t, HTTPSConfig{})
	p := &GetUserInfoParams{OxdID: "x", AccessToken: "at", Protection: Protection{ProtectionAccessToken: "pat-1"}}
	if err := h.Do(context.Background(), CmdGetUserInfo, p, nil); err != nil {
		t.Fatal(err)
	}
	if p.ProtectionAccessToken != "pat-1" {
		t.Fatal("caller's params modified")
	}
	r := fake.Requests()[0]
	if r.Authorization != "Bearer pat-1" || compactJSON(t, r.Body) != `{"access_token":"at","oxd_id":"x"}` {
		t.Fatalf("%q %s", r.Authorization, r.Body)
	}
	// An unprotected command carries no Authorization header.
	if err := h.Do(context.Background(), CmdSetupClient, &SetupClientParams{SiteParams: SiteParams{OPHost: "h"}}, nil); err != nil {
		t.Fatal(err)
	}
	if r := fake.Requests()[1]; r.Authorization != "" || r.Path != "/setup-client" {
		t.Fatalf("%+v", r)
	}
}

// TestHTTPSRedirectNotFollowed: a redirect from the extension is an error,
// never a second request carrying the protection token and the params.
func TestHTTPSRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusPermanentRedirect)
	}))
	defer srv.Close()
	h, err := NewHTTPS(srv.URL, HTTPSConfig{InsecureAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, err = New(h, Config{}).GetUserInfo(context.Background(), GetUserInfoParams{OxdID: "x", AccessToken: "at-secret",
		Protection: Protection{ProtectionAccessToken: "pat-secret"}})
	if err == nil {
		t.Fatal("a redirect was taken as an answer")
	}
	if hits.Load() != 0 {
		t.Fatal("the redirect was followed with the token and params")
	}
}

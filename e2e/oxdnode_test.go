package e2e_test

// Interoperability with the seed ecosystem's own client: oxd-node@3.1.4
// (npm, installed in e2e/oxdnode) calls every command it has against our
// socket listener and our HTTPS-extension handler, in front of the engine
// and the development OP. The node script prints one JSON line per call;
// this test drives the OP's login form over HTTP in between and asserts the
// answers field by field.

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// nodeResult is one line of interop.js.
type nodeResult struct {
	T    string          `json:"t"`
	Step string          `json:"step"`
	Err  json.RawMessage `json:"err"`
	Resp *struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	} `json:"resp"`
	URL string `json:"url"`
}

// startFrontEnds serves engine on a loopback socket listener and an
// HTTPS-extension handler on a self-signed TLS server (protection on for
// both, the engine's default). Both stop when the test ends.
func startFrontEnds(t *testing.T, engine *oxdserver.Engine) (socketAddr, httpsURL string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := &oxdserver.SocketServer{Engine: engine}
	served := make(chan error, 1)
	go func() { served <- sock.Serve(ln) }()
	hs := httptest.NewTLSServer(oxdserver.NewHTTPSHandler(engine, oxdserver.HTTPSConfig{}))
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := sock.Shutdown(ctx); err != nil {
			t.Errorf("socket shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, oxdserver.ErrServerClosed) {
			t.Errorf("socket Serve: %v", err)
		}
	})
	return ln.Addr().String(), hs.URL
}

func TestOxdNodeInterop(t *testing.T) {
	dir := harness.OxdNodeDir(t)
	node := harness.NodePath(t)

	op := oxdtest.NewTestOP(t, oxdtest.OPConfig{})
	engine, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Logger: harness.DebugLogger(t, "oxd-engine")}) // the test OPs are plain http on loopback
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Close() })
	sockAddr, httpsURL := startFrontEnds(t, engine)
	issuer := op.Issuer()

	cmd := exec.Command(node, "interop.js", "--socket", sockAddr, "--https", httpsURL, "--op", issuer)
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	proc := harness.StartPeerProcessGroup(t, "oxd-node interop.js", cmd)
	defer stdin.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Two logins, one per transport: open the authorization URL that
	// oxd-node got, sign in at the OP over HTTP, hand code and state back.
	logins := map[string]string{}
	for _, tr := range []string{"socket", "https"} {
		m, err := proc.WaitForLine(ctx, regexp.MustCompile(`^(\{"t":"`+tr+`","step":"login",.*\})$`))
		if err != nil {
			t.Fatalf("%s: no login step: %v\n%s", tr, err, proc.Output())
		}
		var line nodeResult
		if err := json.Unmarshal([]byte(m[1]), &line); err != nil {
			t.Fatal(err)
		}
		logins[tr] = line.URL
		cb, err := oxdtest.BrowserLogin(ctx, nil, line.URL, "alice", "alice-password")
		if err != nil {
			t.Fatalf("%s: login at the OP: %v", tr, err)
		}
		answer, _ := json.Marshal(map[string]string{"code": cb.Query().Get("code"), "state": cb.Query().Get("state")})
		if _, err := stdin.Write(append(answer, '\n')); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := proc.WaitForLine(ctx, regexp.MustCompile(`^\{"done":true\}$`)); err != nil {
		t.Fatalf("interop.js did not finish: %v\n%s", err, proc.Output())
	}

	results := map[string]map[string]nodeResult{"socket": {}, "https": {}}
	for _, l := range strings.Split(proc.Output(), "\n") {
		if !strings.HasPrefix(l, `{"t":`) {
			continue
		}
		var r nodeResult
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		if r.Step != "login" {
			results[r.T][r.Step] = r
		}
	}

	for _, tr := range []string{"socket", "https"} {
		t.Logf("%s: %d answers from oxd-node", tr, len(results[tr]))
		t.Run(tr, func(t *testing.T) {
			checkInterop(t, tr, issuer, logins[tr], results[tr])
		})
	}
}

// fields is a decoded data object with typed accessors that fail the test.
type fields struct {
	t    *testing.T
	name string
	m    map[string]any
}

func (f fields) str(k string) string {
	f.t.Helper()
	s, ok := f.m[k].(string)
	if !ok || s == "" {
		f.t.Errorf("%s: %s = %#v, want a non-empty string", f.name, k, f.m[k])
	}
	return s
}

func (f fields) null(k string) {
	f.t.Helper()
	if v, ok := f.m[k]; !ok || v != nil {
		f.t.Errorf("%s: %s = %#v (present %v), want null", f.name, k, v, ok)
	}
}

func (f fields) num(k string) float64 {
	f.t.Helper()
	n, ok := f.m[k].(float64)
	if !ok {
		f.t.Errorf("%s: %s = %#v, want a number", f.name, k, f.m[k])
	}
	return n
}

func (f fields) strs(k string) []string {
	f.t.Helper()
	a, ok := f.m[k].([]any)
	if !ok {
		f.t.Errorf("%s: %s = %#v, want an array", f.name, k, f.m[k])
		return nil
	}
	out := make([]string, 0, len(a))
	for _, v := range a {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

func (f fields) obj(k string) fields {
	f.t.Helper()
	m, ok := f.m[k].(map[string]any)
	if !ok {
		f.t.Errorf("%s: %s = %#v, want an object", f.name, k, f.m[k])
	}
	return fields{t: f.t, name: f.name + "." + k, m: m}
}

// ok returns the data of an ok answer.
func okData(t *testing.T, res map[string]nodeResult, step string) fields {
	t.Helper()
	r, found := res[step]
	switch {
	case !found:
		t.Fatalf("%s: not called", step)
	case string(r.Err) != "null" && len(r.Err) > 0:
		t.Fatalf("%s: oxd-node error %s", step, r.Err)
	case r.Resp == nil || r.Resp.Status != "ok":
		t.Fatalf("%s: answer %+v", step, r.Resp)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Resp.Data, &m); err != nil {
		t.Fatalf("%s: data %s: %v", step, r.Resp.Data, err)
	}
	return fields{t: t, name: step, m: m}
}

// errData returns the data of a status:"error" answer and checks its code.
func errData(t *testing.T, res map[string]nodeResult, step, code string) fields {
	t.Helper()
	r, found := res[step]
	if !found || r.Resp == nil || r.Resp.Status != "error" {
		t.Fatalf("%s: answer %+v (err %s), want status error", step, r.Resp, r.Err)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Resp.Data, &m); err != nil {
		t.Fatal(err)
	}
	f := fields{t: t, name: step, m: m}
	if got := f.str("error"); got != code {
		t.Errorf("%s: error %q, want %q (%s)", step, got, code, r.Resp.Data)
	}
	if _, ok := m["details"]; !ok {
		t.Errorf("%s: no details key", step)
	}
	return f
}

func checkInterop(t *testing.T, tr, issuer, loginURL string, res map[string]nodeResult) {
	setup := okData(t, res, "setup_client")
	oxdID := setup.str("oxd_id")
	clientID := setup.str("client_id_of_oxd_id")
	setup.str("setup_client_oxd_id")
	setup.str("client_id")
	setup.str("client_secret")
	setup.str("client_registration_access_token")
	if setup.str("op_host") != issuer {
		t.Errorf("setup_client op_host %v", setup.m["op_host"])
	}
	if !strings.HasPrefix(setup.str("client_registration_client_uri"), issuer+"/") {
		t.Errorf("client_registration_client_uri %v", setup.m["client_registration_client_uri"])
	}
	setup.num("client_id_issued_at")
	setup.num("client_secret_expires_at")

	pat := okData(t, res, "get_client_token")
	pat.str("access_token")
	if pat.num("expires_in") <= 0 || !strings.Contains(" "+pat.str("scope")+" ", " oxd ") {
		t.Errorf("get_client_token %v", pat.m)
	}
	if _, ok := pat.m["refresh_token"]; !ok {
		t.Error("get_client_token: no refresh_token key")
	}

	if tr == "socket" {
		// Without a token the socket answers the 3.1.4 error envelope.
		errData(t, res, "get_authorization_url.no_token", oxdclient.CodeBlankProtectionAccessToken)
	}
	if tr == "https" {
		// Without Authorization the extension answers 403 with Dropwizard's
		// body, which oxd-node hands over as the error.
		r := res["get_authorization_url.no_token"]
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(r.Err, &e); err != nil || e.Code != 403 ||
			e.Message != `{"status":"error","data":{"error":"403","error_description":"Forbidden Access","details":null}}` || r.Resp != nil {
			t.Errorf("no token: err %s resp %+v", r.Err, r.Resp)
		}
	}

	au := okData(t, res, "get_authorization_url")
	if u := au.str("authorization_url"); u != loginURL || !strings.HasPrefix(u, issuer+"/authorize?") {
		t.Errorf("authorization_url %q (login used %q)", u, loginURL)
	}
	for _, want := range []string{"response_type=code", "client_id=" + clientID, "state=", "nonce=", "code_challenge_method=S256", "code_challenge=", "redirect_uri=https%3A%2F%2Frp.example.test%2Fcb", "openid"} {
		if !strings.Contains(loginURL, want) {
			t.Errorf("authorization_url lacks %q: %s", want, loginURL)
		}
	}

	tok := okData(t, res, "get_tokens_by_code")
	access := tok.str("access_token")
	if parts := strings.Split(tok.str("id_token"), "."); len(parts) != 3 {
		t.Errorf("id_token is not a JWS")
	}
	refresh := tok.str("refresh_token")
	if tok.num("expires_in") <= 0 {
		t.Errorf("expires_in %v", tok.m["expires_in"])
	}
	claims := tok.obj("id_token_claims")
	if s := claims.strs("sub"); len(s) != 1 || s[0] != "alice" {
		t.Errorf("id_token_claims.sub %v", s)
	}
	if s := claims.strs("iss"); len(s) != 1 || s[0] != issuer {
		t.Errorf("id_token_claims.iss %v", s)
	}
	if s := claims.strs("aud"); len(s) == 0 || s[0] != clientID {
		t.Errorf("id_token_claims.aud %v", s)
	}
	replay := errData(t, res, "get_tokens_by_code.replay", oxdclient.CodeBadRequest)
	if d := replay.str("error_description"); d != oxdclient.DescStateNotRegistered {
		t.Errorf("replayed state: %q", d)
	}

	ui := okData(t, res, "get_user_info")
	uc := ui.obj("claims")
	if s := uc.strs("email"); len(s) != 1 || s[0] != "alice@example.test" {
		t.Errorf("userinfo email %v", s)
	}
	if s := uc.strs("sub"); len(s) != 1 || s[0] != "alice" {
		t.Errorf("userinfo sub %v", s)
	}
	ui.null("access_token")
	ui.null("refresh_token")

	in := okData(t, res, "introspect_access_token")
	if in.m["active"] != true || in.str("client_id") != clientID {
		t.Errorf("introspect_access_token %v", in.m)
	}
	for _, k := range []string{"exp", "iat"} {
		in.num(k)
	}

	rt := okData(t, res, "get_access_token_by_refresh_token")
	if a := rt.str("access_token"); a == access {
		t.Error("refresh returned the same access token")
	}
	rt.str("refresh_token")
	rt.num("expires_in")
	_ = refresh

	lo := okData(t, res, "get_logout_uri")
	uri := lo.str("uri")
	if !strings.HasPrefix(uri, issuer+"/") || !strings.Contains(uri, "post_logout_redirect_uri=https%3A%2F%2Frp.example.test%2Fout") || !strings.Contains(uri, "state=st1") {
		t.Errorf("logout uri %s", uri)
	}

	if p := okData(t, res, "uma_rs_protect"); p.str("oxd_id") != oxdID {
		t.Errorf("uma_rs_protect %v", p.m)
	}
	den := okData(t, res, "uma_rs_check_access")
	ticket := den.str("ticket")
	hdr := den.str("www-authenticate_header")
	if den.str("access") != "denied" || !strings.HasPrefix(hdr, `UMA realm="`) || !strings.Contains(hdr, `as_uri="`+issuer+`"`) ||
		!strings.Contains(hdr, `error="insufficient_scope"`) || !strings.Contains(hdr, `ticket="`+ticket+`"`) {
		t.Errorf("check access denied: %v", den.m)
	}
	rpt := okData(t, res, "uma_rp_get_rpt")
	rpt.str("access_token")
	if rpt.str("token_type") != "Bearer" {
		t.Errorf("token_type %v", rpt.m["token_type"])
	}
	if _, ok := rpt.m["updated"].(bool); !ok {
		t.Errorf("uma_rp_get_rpt: updated %v", rpt.m["updated"])
	}
	if _, ok := rpt.m["pct"]; !ok {
		t.Error("uma_rp_get_rpt: no pct key")
	}
	gr := okData(t, res, "uma_rs_check_access.rpt")
	if gr.str("access") != "granted" {
		t.Errorf("check access with RPT: %v", gr.m)
	}
	gr.null("ticket")
	gr.null("www-authenticate_header")
	ir := okData(t, res, "introspect_rpt")
	if ir.m["active"] != true {
		t.Errorf("introspect_rpt %v", ir.m)
	}
	perms, _ := ir.m["permissions"].([]any)
	if len(perms) != 1 {
		t.Fatalf("introspect_rpt permissions %v", ir.m["permissions"])
	}
	perm := fields{t: t, name: "permission", m: perms[0].(map[string]any)}
	perm.str("resource_id")
	if s := perm.strs("resource_scopes"); len(s) != 1 || s[0] != "view" {
		t.Errorf("resource_scopes %v", s)
	}

	np := errData(t, res, "uma_rs_check_access.not_protected", oxdclient.CodeInvalidRequest)
	if d := np.str("error_description"); d != "Resource is not protected with path: /nothing and httpMethod: GET. Please protect your resource first with uma_rs_protect command. Check details on https://gluu.org/docs/oxd" {
		t.Errorf("not protected: %q", d)
	}
	np.null("details")

	if d := okData(t, res, "uma_rs_check_access.post"); d.str("access") != "denied" {
		t.Errorf("POST check: %v", d.m)
	}
	ni := errData(t, res, "uma_rp_get_rpt.need_info", oxdclient.CodeNeedInfo)
	det := ni.obj("details")
	niTicket := det.str("ticket")
	if det.str("error") != "need_info" || !strings.HasPrefix(det.str("redirect_user"), issuer+"/") {
		t.Errorf("need_info details %v", det.m)
	}
	cg := okData(t, res, "uma_rp_get_claims_gathering_url")
	cgURL := cg.str("url")
	state := cg.str("state")
	for _, want := range []string{"ticket=" + niTicket, "claims_redirect_uri=https%3A%2F%2Frp.example.test%2Fclaims", "state=" + state, "client_id=" + clientID} {
		if !strings.Contains(cgURL, want) {
			t.Errorf("claims gathering url lacks %q: %s", want, cgURL)
		}
	}
	if !strings.HasPrefix(cgURL, issuer+"/") {
		t.Errorf("claims gathering url %s", cgURL)
	}

	site := okData(t, res, "register_site")
	siteID := site.str("oxd_id")
	if siteID == oxdID || site.str("op_host") != issuer {
		t.Errorf("register_site %v", site.m)
	}
	if u := okData(t, res, "update_site"); u.str("oxd_id") != siteID {
		t.Errorf("update_site %v", u.m)
	}
	if r := okData(t, res, "remove_site"); r.str("oxd_id") != siteID {
		t.Errorf("remove_site %v", r.m)
	}
	errData(t, res, "get_authorization_url.removed", oxdclient.CodeInvalidOxdID)

	// Every command of oxd-node was called.
	called := map[string]bool{}
	for step := range res {
		called[strings.SplitN(step, ".", 2)[0]] = true
	}
	for _, c := range []string{"setup_client", "register_site", "get_client_token", "update_site", "remove_site",
		"get_authorization_url", "get_tokens_by_code", "get_user_info", "get_logout_uri",
		"get_access_token_by_refresh_token", "introspect_access_token", "introspect_rpt", "uma_rs_protect",
		"uma_rs_check_access", "uma_rp_get_rpt", "uma_rp_get_claims_gathering_url"} {
		if !called[c] {
			t.Errorf("%s was not called over %s", c, tr)
		}
	}
}

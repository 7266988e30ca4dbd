package oxdclient

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSecretFormattingEveryVerb: no fmt verb, flag or width reveals the
// value (nor its hex form); slog handlers redact it; JSON (the oxd wire)
// carries it.
func TestSecretFormattingEveryVerb(t *testing.T) {
	const value = "tok-5f3a9c"
	s := Secret(value)
	type holder struct {
		Name string
		Tok  Secret
		Ptr  *Secret
	}
	h := holder{Name: "n", Tok: s, Ptr: &s}
	hexv := hex.EncodeToString([]byte(value))
	// Every verb except %p and %w: fmt rejects those for a string-kinded
	// value before consulting Format and prints the raw value in its
	// "%!p(…)" diagnostic; go vet reports both misuses (see Secret's doc).
	verbs := []string{"%s", "%v", "%+v", "%#v", "%q", "%x", "%X", "% x", "%d", "%10s", "%-12v", "%.3s", "%T", "%t", "%U", "%c", "%e", "%08s", "%b", "%o", "%g", "%z"}
	for _, verb := range verbs {
		for _, arg := range []any{s, &s, h, &h, []Secret{s}, map[string]Secret{"k": s}} {
			out := fmt.Sprintf(verb, arg)
			if strings.Contains(out, value) || strings.Contains(strings.ToLower(out), hexv) || strings.Contains(out, "tok-") {
				t.Errorf("%s of %T reveals the secret: %s", verb, arg, out)
			}
		}
	}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintln(s, h), s.String(), s.GoString(), fmt.Errorf("wrapped %v: %w", s, errors.New("x")).Error()} {
		if strings.Contains(out, value) {
			t.Errorf("reveals: %s", out)
		}
	}
	if s.String() != redacted || Secret("").String() != "" || fmt.Sprintf("%#v", s) != `oxdclient.Secret("[REDACTED]")` {
		t.Errorf("%q %q", s.String(), fmt.Sprintf("%#v", s))
	}
	var buf bytes.Buffer
	for _, hd := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(hd).Info("m", "tok", s, slog.Any("ptr", &s), "v", s.LogValue())
	}
	if strings.Contains(buf.String(), value) || !strings.Contains(buf.String(), redacted) {
		t.Errorf("slog: %s", buf.String())
	}
	// The wire carries the value; a Secret decodes from a string or null.
	b, _ := json.Marshal(struct{ T Secret }{s})
	if string(b) != `{"T":"tok-5f3a9c"}` || s.Reveal() != value {
		t.Errorf("%s", b)
	}
	var back struct{ T, N Secret }
	if err := json.Unmarshal([]byte(`{"T":"tok-5f3a9c","N":null}`), &back); err != nil || back.T != s || back.N != "" {
		t.Errorf("%v %+v", err, back)
	}
	if err := json.Unmarshal([]byte(`{"T":5}`), &back); err == nil || strings.Contains(err.Error(), "5") {
		t.Errorf("%v", err)
	}
}

// Distinct values for every kind of secret, so that any leak is found.
const (
	leakClientSecret = "LEAK-client-secret-7d1e"
	leakPAT          = "LEAK-pat-2b9f"
	leakAccess       = "LEAK-access-token-91ac"
	leakRefresh      = "LEAK-refresh-token-55e0"
	leakIDToken      = "LEAK-id-token-eyJhbGci"
	leakRPT          = "LEAK-rpt-c0ffee"
	leakCode         = "LEAK-code-e11f"
	leakRegToken     = "LEAK-registration-token-4a4a"
	leakPCT          = "LEAK-pct-77aa"
)

var leakValues = []string{leakClientSecret, leakPAT, leakAccess, leakRefresh, leakIDToken, leakRPT, leakCode, leakRegToken, leakPCT, "LEAK"}

// leakyOxd answers every command with secrets, and fails some on demand.
func leakyOxd(command string, params []byte) string {
	ok := func(data any) string {
		b, _ := json.Marshal(map[string]any{"status": "ok", "data": data})
		return string(b)
	}
	switch command {
	case CmdSetupClient:
		return ok(map[string]any{"oxd_id": "o", "client_id": "setup", "client_secret": leakClientSecret, "client_registration_access_token": leakRegToken})
	case CmdGetClientToken:
		return ok(map[string]any{"access_token": leakPAT, "expires_in": 300, "refresh_token": nil, "scope": "openid oxd"})
	case CmdGetTokensByCode:
		return ok(map[string]any{"access_token": leakAccess, "expires_in": 300, "id_token": leakIDToken, "refresh_token": leakRefresh, "id_token_claims": map[string]any{"sub": []string{"u"}}})
	case CmdGetAccessTokenByRefreshToken:
		return ok(map[string]any{"access_token": leakAccess, "expires_in": 300, "refresh_token": leakRefresh, "scope": "openid"})
	case CmdUMARPGetRPT:
		return ok(map[string]any{"access_token": leakRPT, "token_type": "Bearer", "pct": leakPCT, "updated": false})
	case CmdIntrospectRPT:
		return `{"status":"error","data":{"error":"invalid_protection_access_token","error_description":"Invalid protection_access_token.","details":null}}`
	case CmdGetUserInfo:
		return `{"status":"error","data":{"error":"internal_error","error_description":"Unknown internal server error occurs.","details":null}}`
	case CmdUMARSCheckAccess:
		return `{"status":"ok","data":` // malformed
	}
	return ok(map[string]any{"oxd_id": "o"})
}

// exerciseAll runs every command with secrets in the params and collects
// the errors' strings.
func exerciseAll(t *testing.T, c *Client) []string {
	ctx := context.Background()
	var outs []string
	note := func(v any, err error) {
		outs = append(outs, fmt.Sprintf("%v|%+v", v, v))
		if err != nil {
			outs = append(outs, err.Error(), fmt.Sprintf("%+v|%#v", err, err))
			var oe *Error
			if errors.As(err, &oe) {
				outs = append(outs, oe.Error(), fmt.Sprint(oe.LogValue()))
			}
		}
	}
	note(c.SetupClient(ctx, SetupClientParams{SiteParams: SiteParams{OPHost: "h", ClientSecret: leakClientSecret, ClientRegistrationAccessToken: leakRegToken}}))
	note(c.GetClientToken(ctx, GetClientTokenParams{ClientID: "id", ClientSecret: leakClientSecret, OPHost: "h"}))
	note(c.RegisterSite(ctx, RegisterSiteParams{SiteParams: SiteParams{OPHost: "h", ClientSecret: leakClientSecret}}))
	note(c.UpdateSite(ctx, UpdateSiteParams{OxdID: "o", ClientSecret: leakClientSecret}))
	note(c.GetTokensByCode(ctx, GetTokensByCodeParams{OxdID: "o", Code: leakCode, State: "s"}))
	note(c.GetAccessTokenByRefreshToken(ctx, GetAccessTokenByRefreshTokenParams{OxdID: "o", RefreshToken: leakRefresh}))
	note(c.GetUserInfo(ctx, GetUserInfoParams{OxdID: "o", AccessToken: leakAccess}))
	note(c.GetLogoutURI(ctx, GetLogoutURIParams{OxdID: "o", IDTokenHint: leakIDToken}))
	note(c.IntrospectAccessToken(ctx, IntrospectAccessTokenParams{OxdID: "o", AccessToken: leakAccess}))
	note(c.IntrospectRPT(ctx, IntrospectRPTParams{OxdID: "o", RPT: leakRPT}))
	note(c.UMARSCheckAccess(ctx, UMARSCheckAccessParams{OxdID: "o", RPT: leakRPT, Path: "/p", HTTPMethod: "GET"}))
	note(c.UMARPGetRPT(ctx, UMARPGetRPTParams{OxdID: "o", Ticket: "t", RPT: leakRPT, PCT: leakPCT, ClaimToken: leakIDToken}))
	// A request too large to send, made of a secret.
	note(c.UpdateSite(ctx, UpdateSiteParams{OxdID: "o", ClientSecret: Secret(strings.Repeat(leakClientSecret, 500))}))
	return outs
}

// TestNoSecretInLogsOrErrors runs every command, over the socket and the
// HTTPS extension, with a debug logger, protection tokens, oxd errors,
// retries and transport failures, and searches every log line and error
// string for the secrets that went through.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	srv := newFakeServer(t, func(f fakeFrame) fakeReply { return fakeReply{Body: leakyOxd(f.Command, f.Params)} })
	https := newFakeHTTPS(t, func(command string, params json.RawMessage, _ string, _ *http.Request) (int, string) {
		if command == CmdGetLogoutURI { // an OP error passed through
			return 401, `{"code":401,"message":"{\"error\":\"invalid_token\"}"}`
		}
		if command == CmdUpdateSite {
			return 400, "Invalid parameters. Message: Unrecognized token '" + leakClientSecret + "'"
		}
		return 200, leakyOxd(command, params)
	})
	silent := newFakeServer(t, func(fakeFrame) fakeReply { return fakeReply{Silent: true} })
	transports := map[string]Transport{
		"socket": newTestSocket(t, srv.Addr(), SocketConfig{}),
		"https":  https.transport(t, HTTPSConfig{}),
		"silent": newTestSocket(t, silent.Addr(), SocketConfig{Timeout: 50 * time.Millisecond}),
	}
	for name, tr := range transports {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			creds := ProtectionCredentials{ClientID: "setup", ClientSecret: leakClientSecret, OPHost: "h"}
			c := New(tr, Config{Logger: logger, Protection: &creds})
			outs := exerciseAll(t, c)
			text := logs.String() + strings.Join(outs, "\n")
			if name != "silent" && !strings.Contains(logs.String(), `"command":"get_tokens_by_code"`) {
				t.Fatalf("logger not used: %s", logs.String())
			}
			for _, v := range leakValues {
				if i := strings.Index(text, v); i >= 0 {
					t.Fatalf("secret %q leaked: …%s…", v, text[max(0, i-120):min(len(text), i+60)])
				}
			}
		})
	}
}

// TestClientSilentByDefault: without a logger nothing is logged, not even
// through slog's default logger.
func TestClientSilentByDefault(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(old)
	c := New(envelopeTransport(leakyOxd), Config{Protection: &ProtectionCredentials{ClientID: "s", ClientSecret: leakClientSecret}})
	exerciseAll(t, c)
	if buf.Len() != 0 {
		t.Fatalf("logged without a logger: %s", buf.String())
	}
}

package oxdclient

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// commandTypes maps every 3.1.4 command to its params and answer types.
var commandTypes = map[string][2]reflect.Type{
	CmdSetupClient:                  {reflect.TypeFor[SetupClientParams](), reflect.TypeFor[SetupClientResponse]()},
	CmdRegisterSite:                 {reflect.TypeFor[RegisterSiteParams](), reflect.TypeFor[RegisterSiteResponse]()},
	CmdUpdateSite:                   {reflect.TypeFor[UpdateSiteParams](), reflect.TypeFor[OxdIDResponse]()},
	CmdRemoveSite:                   {reflect.TypeFor[RemoveSiteParams](), reflect.TypeFor[OxdIDResponse]()},
	CmdGetAuthorizationURL:          {reflect.TypeFor[GetAuthorizationURLParams](), reflect.TypeFor[GetAuthorizationURLResponse]()},
	CmdGetTokensByCode:              {reflect.TypeFor[GetTokensByCodeParams](), reflect.TypeFor[GetTokensByCodeResponse]()},
	CmdGetAccessTokenByRefreshToken: {reflect.TypeFor[GetAccessTokenByRefreshTokenParams](), reflect.TypeFor[TokenResponse]()},
	CmdGetUserInfo:                  {reflect.TypeFor[GetUserInfoParams](), reflect.TypeFor[GetUserInfoResponse]()},
	CmdGetLogoutURI:                 {reflect.TypeFor[GetLogoutURIParams](), reflect.TypeFor[GetLogoutURIResponse]()},
	CmdGetClientToken:               {reflect.TypeFor[GetClientTokenParams](), reflect.TypeFor[TokenResponse]()},
	CmdIntrospectAccessToken:        {reflect.TypeFor[IntrospectAccessTokenParams](), reflect.TypeFor[IntrospectAccessTokenResponse]()},
	CmdIntrospectRPT:                {reflect.TypeFor[IntrospectRPTParams](), reflect.TypeFor[IntrospectRPTResponse]()},
	CmdUMARSProtect:                 {reflect.TypeFor[UMARSProtectParams](), reflect.TypeFor[OxdIDResponse]()},
	CmdUMARSCheckAccess:             {reflect.TypeFor[UMARSCheckAccessParams](), reflect.TypeFor[UMARSCheckAccessResponse]()},
	CmdUMARPGetRPT:                  {reflect.TypeFor[UMARPGetRPTParams](), reflect.TypeFor[UMARPGetRPTResponse]()},
	CmdUMARPGetClaimsGatheringURL:   {reflect.TypeFor[UMARPGetClaimsGatheringURLParams](), reflect.TypeFor[UMARPGetClaimsGatheringURLResponse]()},
	CmdGetRP:                        {reflect.TypeFor[GetRPParams](), reflect.TypeFor[GetRPResponse]()},
}

// jsonNames returns the JSON keys of a struct type, through embedded
// structs.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			out = append(out, jsonNames(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

type catalogue struct {
	Commands map[string]struct {
		Params []struct {
			Name string `json:"name"`
		} `json:"params"`
		Response json.RawMessage `json:"response"`
	} `json:"commands"`
}

func loadCatalogue(t testing.TB) catalogue {
	t.Helper()
	var c catalogue
	if err := json.Unmarshal(readFixture(t, "commands-3.1.4.json"), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// responseNames extracts the field names of a catalogue response list
// ("expires_in (int…)" → "expires_in", "permissions[{…}]" → "permissions").
func responseNames(raw json.RawMessage) []string {
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		if i := strings.IndexAny(s, " [("); i >= 0 {
			s = s[:i]
		}
		out = append(out, s)
	}
	return out
}

// TestCatalogueEveryCommandCovered: every command of the 3.1.4 catalogue
// that the issue lists has a params type knowing every parameter name and
// an answer type knowing every response field.
func TestCatalogueEveryCommandCovered(t *testing.T) {
	cat := loadCatalogue(t)
	for cmd, types := range commandTypes {
		entry, ok := cat.Commands[cmd]
		if !ok {
			t.Errorf("%s: not in the catalogue", cmd)
			continue
		}
		pnames := jsonNames(types[0])
		for _, p := range entry.Params {
			if !slices.Contains(pnames, p.Name) {
				t.Errorf("%s: params type %s lacks %q", cmd, types[0].Name(), p.Name)
			}
		}
		rnames := jsonNames(types[1])
		for _, r := range responseNames(entry.Response) {
			if !slices.Contains(rnames, r) {
				t.Errorf("%s: answer type %s lacks %q", cmd, types[1].Name(), r)
			}
		}
		// The command must be callable through the Client (callCommand).
		_, err := callCommand(context.Background(), New(funcTransport(func(context.Context, string, any, any) error { return nil }), Config{}), cmd, []byte("{}"))
		if err != nil {
			t.Errorf("%s: %v", cmd, err)
		}
	}
	if len(commandTypes) != 17 {
		t.Fatalf("%d commands, want the 17 of 3.1.4", len(commandTypes))
	}
}

// TestNullsEverywhere: 3.1.x answers carry every field, null when unset
// (Jackson 1.9); every answer type must accept all of them null.
func TestNullsEverywhere(t *testing.T) {
	cat := loadCatalogue(t)
	for cmd, types := range commandTypes {
		names := responseNames(cat.Commands[cmd].Response)
		data := map[string]any{}
		for _, n := range names {
			data[n] = nil
		}
		body, _ := json.Marshal(map[string]any{"status": "ok", "data": data})
		res := reflect.New(types[1]).Interface()
		if err := DecodeEnvelope(cmd, body, res); err != nil {
			t.Errorf("%s: all-null answer: %v", cmd, err)
		}
		// And params with explicit nulls are accepted by the params type.
		pdata := map[string]any{}
		for _, p := range cat.Commands[cmd].Params {
			pdata[p.Name] = nil
		}
		pb, _ := json.Marshal(pdata)
		if err := strictUnmarshal(pb, reflect.New(types[0]).Interface()); err != nil {
			t.Errorf("%s: all-null params: %v", cmd, err)
		}
	}
}

// socketCases pairs every request fixture with the answer it gets.
var socketCases = []struct {
	request, response string
}{
	{"setup_client.request.json", "setup_client.response.json"},
	{"register_site.request.json", "register_site.response.json"},
	{"register_site.minimal.request.json", "register_site.response.json"},
	{"register_site.preregistered_client.request.json", "register_site.response.json"},
	{"update_site.request.json", "update_site.response.json"},
	{"remove_site.request.json", "remove_site.response.json"},
	{"get_authorization_url.request.json", "get_authorization_url.response.json"},
	{"get_authorization_url.minimal.request.json", "get_authorization_url.response.json"},
	{"get_tokens_by_code.request.json", "get_tokens_by_code.response.json"},
	{"get_access_token_by_refresh_token.request.json", "get_access_token_by_refresh_token.response.json"},
	{"get_user_info.request.json", "get_user_info.response.json"},
	{"get_logout_uri.request.json", "get_logout_uri.response.json"},
	{"get_client_token.request.json", "get_client_token.response.json"},
	{"get_client_token.private_key_jwt.request.json", "get_client_token.response.json"},
	{"introspect_access_token.request.json", "introspect_access_token.response.json"},
	{"introspect_rpt.request.json", "introspect_rpt.response.json"},
	{"uma_rs_protect.request.json", "uma_rs_protect.response.json"},
	{"uma_rs_protect.scope_expression.request.json", "uma_rs_protect.response.json"},
	{"uma_rs_check_access.request.json", "uma_rs_check_access.granted.response.json"},
	{"uma_rs_check_access.no_rpt.request.json", "uma_rs_check_access.denied.response.json"},
	{"uma_rp_get_rpt.request.json", "uma_rp_get_rpt.response.json"},
	{"uma_rp_get_rpt.with_claims.request.json", "uma_rp_get_rpt.response.json"},
	{"uma_rp_get_claims_gathering_url.request.json", "uma_rp_get_claims_gathering_url.response.json"},
	{"get_rp.request.json", "get_rp.response.json"},
	{"get_rp.list.request.json", "get_rp.list.response.json"},
}

// TestRequestEncodingMatchesFixtures: each request fixture, decoded
// strictly into its params type and sent through the Client, yields exactly
// the fixture's params on the wire (absent = null = "").
func TestRequestEncodingMatchesFixtures(t *testing.T) {
	for _, tc := range socketCases {
		t.Run(tc.request, func(t *testing.T) {
			cmd, want := fixtureRequest(t, "socket-3.1/"+tc.request)
			var gotCmd string
			var got []byte
			c := New(funcTransport(func(_ context.Context, command string, params, _ any) error {
				gotCmd = command
				var err error
				got, err = json.Marshal(params)
				return err
			}), Config{})
			if _, err := callCommand(context.Background(), c, cmd, want); err != nil {
				t.Fatal(err)
			}
			if gotCmd != cmd {
				t.Fatalf("command %q, want %q", gotCmd, cmd)
			}
			if !sameParams(t, got, want) {
				t.Fatalf("params differ:\n got %s\nwant %s", compactJSON(t, got), compactJSON(t, want))
			}
		})
	}
}

// TestHandBuiltParamsWireNames pins the Go field → wire name mapping for a
// few commands without going through the fixtures' own decoding.
func TestHandBuiltParamsWireNames(t *testing.T) {
	cases := []struct {
		params any
		want   string
	}{
		{&GetTokensByCodeParams{OxdID: "o", Code: "c", State: "s", Protection: Protection{ProtectionAccessToken: "p"}},
			`{"oxd_id":"o","code":"c","state":"s","protection_access_token":"p"}`},
		{&UMARSCheckAccessParams{OxdID: "o", Path: "/p", HTTPMethod: "GET"},
			`{"oxd_id":"o","rpt":"","path":"/p","http_method":"GET"}`},
		{&GetRPParams{List: true}, `{"list":true}`},
		{&UMARSProtectParams{OxdID: "o", Resources: []UMAResource{{Path: "/a", Conditions: []UMACondition{{HTTPMethods: []string{"GET"}, Scopes: []string{"s"}, TicketScopes: []string{"t"}}}}}},
			`{"oxd_id":"o","resources":[{"path":"/a","conditions":[{"httpMethods":["GET"],"scopes":["s"],"ticketScopes":["t"]}]}]}`},
		{&SetupClientParams{SiteParams: SiteParams{OPHost: "h", ClientSecret: "x", TrustedClient: true}, SetupClientName: "n"},
			`{"op_host":"h","client_secret":"x","trusted_client":true,"setup_client_name":"n"}`},
		{&UpdateSiteParams{OxdID: "o", ClientLogoutURIs: []string{"u"}},
			`{"oxd_id":"o","client_logout_uris":["u"]}`},
	}
	for _, tc := range cases {
		b, err := json.Marshal(tc.params)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%T:\n got %s\nwant %s", tc.params, b, tc.want)
		}
	}
}

// decodeFixture decodes a response fixture for command into a new answer.
func decodeFixture(t *testing.T, cmd, rel string) (any, error) {
	t.Helper()
	res := reflect.New(commandTypes[cmd][1]).Interface()
	err := DecodeEnvelope(cmd, readFixture(t, rel), res)
	return res, err
}

// TestResponseDecodingFixtures checks the typed answer of every success
// fixture field by field.
func TestResponseDecodingFixtures(t *testing.T) {
	const oxdID = "bcad760f-91ba-46e1-a020-05e4281d91b6"
	type check func(t *testing.T, v any)
	cases := []struct {
		cmd, file string
		check     check
	}{
		{CmdSetupClient, "setup_client.response.json", func(t *testing.T, v any) {
			r := v.(*SetupClientResponse)
			want := SetupClientResponse{
				OxdID: oxdID, ClientIDOfOxdID: "@!1736.179E.AA60.16B2!0001!8F7C.B9AB!0008!A2BB.9AE6.AAA4",
				OPHost: "https://ce-dev3.gluu.org", SetupClientOxdID: "6F9619FF-8B86-D011-B42D-00CF4FC964FF",
				ClientID: "@!1736.179E.AA60.16B2!0001!8F7C.B9AB!0008!A2BB.9AE6.5F14.B387", ClientSecret: "f436b936-03fc-433f-9772-53c2bc9e1c74",
				ClientRegistrationAccessToken: "d836df94-44b0-445a-848a-d43189839b17",
				ClientRegistrationClientURI:   "https://ce-dev3.gluu.org/oxauth/restv1/register?client_id=@!1736.179E.AA60.16B2!0001!8F7C.B9AB!0008!A2BB.9AE6.5F14.B387",
				ClientIDIssuedAt:              1501854943, ClientSecretExpiresAt: 1501941343,
			}
			if *r != want {
				t.Fatalf("got %+v", *r)
			}
		}},
		{CmdRegisterSite, "register_site.response.json", func(t *testing.T, v any) {
			if r := v.(*RegisterSiteResponse); r.OxdID != oxdID || r.OPHost != "https://ce-dev3.gluu.org" {
				t.Fatalf("got %+v", r)
			}
		}},
		{CmdUpdateSite, "update_site.response.json", func(t *testing.T, v any) {
			if v.(*OxdIDResponse).OxdID != oxdID {
				t.Fatal(v)
			}
		}},
		{CmdRemoveSite, "remove_site.response.json", func(t *testing.T, v any) {
			if v.(*OxdIDResponse).OxdID != oxdID {
				t.Fatal(v)
			}
		}},
		{CmdUMARSProtect, "uma_rs_protect.response.json", func(t *testing.T, v any) {
			if v.(*OxdIDResponse).OxdID != oxdID {
				t.Fatal(v)
			}
		}},
		{CmdGetAuthorizationURL, "get_authorization_url.response.json", func(t *testing.T, v any) {
			u := v.(*GetAuthorizationURLResponse).AuthorizationURL
			if !strings.HasPrefix(u, "https://ce-dev3.gluu.org/oxauth/restv1/authorize?response_type=code&") || !strings.HasSuffix(u, "%7B%22param2%22%3A%22value2%22%7D%5D") {
				t.Fatal(u)
			}
		}},
		{CmdGetTokensByCode, "get_tokens_by_code.response.json", func(t *testing.T, v any) {
			r := v.(*GetTokensByCodeResponse)
			if r.AccessToken.Reveal() != "SlAV32hkKG" || r.ExpiresIn != 3600 || r.RefreshToken.Reveal() != "aaAV32hkKG1" ||
				!strings.HasPrefix(r.IDToken.Reveal(), "eyJ0 ... NiJ9") {
				t.Fatalf("tokens: %+v", r)
			}
			// 3.x claims are string arrays, numbers included.
			if got := r.IDTokenClaims.Strings("aud"); !slices.Equal(got, []string{"s6BhdRkqt3"}) {
				t.Fatalf("aud %v", got)
			}
			if exp, ok := r.IDTokenClaims.Int("exp"); !ok || exp != 1311281970 {
				t.Fatalf("exp %v %v", exp, ok)
			}
			if r.IDTokenClaims.String("nonce") != "lbrdgorr974q66q6q9g454iccm" || r.IDTokenClaims.String("sub") != "24400320" {
				t.Fatal("claims")
			}
			if r.IDTokenClaims.String("missing") != "" {
				t.Fatal("missing claim")
			}
		}},
		{CmdGetAccessTokenByRefreshToken, "get_access_token_by_refresh_token.response.json", func(t *testing.T, v any) {
			r := v.(*TokenResponse)
			if r.AccessToken != "SlAV32hkKG2" || r.ExpiresIn != 3600 || r.RefreshToken != "aaAV32hkKG2" || r.Scope != "openid profile" {
				t.Fatalf("%+v", r)
			}
		}},
		{CmdGetUserInfo, "get_user_info.response.json", func(t *testing.T, v any) {
			r := v.(*GetUserInfoResponse)
			if r.Claims.String("email") != "janedoe@example.com" || r.Claims.String("name") != "Jane Doe" || len(r.Claims) != 7 {
				t.Fatalf("%+v", r.Claims)
			}
			if !r.AccessToken.IsZero() || !r.RefreshToken.IsZero() {
				t.Fatal("null tokens not empty")
			}
		}},
		{CmdGetLogoutURI, "get_logout_uri.response.json", func(t *testing.T, v any) {
			if u := v.(*GetLogoutURIResponse).URI; !strings.HasPrefix(u, "https://ce-dev3.gluu.org/oxauth/restv1/end_session?post_logout_redirect_uri=https%3A%2F%2F") {
				t.Fatal(u)
			}
		}},
		{CmdGetClientToken, "get_client_token.response.json", func(t *testing.T, v any) {
			r := v.(*TokenResponse)
			if r.AccessToken != "b75434ff-f465-4b70-92e4-b7ba6b6c58f2" || r.ExpiresIn != 299 || !r.RefreshToken.IsZero() || r.Scope != "openid oxd uma_protection" {
				t.Fatalf("%+v", r)
			}
		}},
		{CmdIntrospectAccessToken, "introspect_access_token.response.json", func(t *testing.T, v any) {
			r := v.(*IntrospectAccessTokenResponse)
			cid := "@!1736.179E.AA60.16B2!0001!8F7C.B9AB!0008!A2BB.9AE6.5F14.B387"
			if !r.Active || r.ClientID != cid || r.Username != "admin" || r.TokenType != "bearer" || r.Exp != 1419356238 ||
				r.Iat != 1419350238 || r.Sub != "jblack" || r.Iss != "https://ce-dev3.gluu.org" || r.JTI != "" || r.AcrValues != "basic" {
				t.Fatalf("%+v", r)
			}
			// aud is a string here, an array elsewhere.
			if !slices.Equal(r.Aud, []string{cid}) || !slices.Equal(r.Scope, []string{"openid", "profile"}) || !slices.Equal(r.Scopes, []string{"openid", "profile"}) {
				t.Fatalf("%+v", r)
			}
		}},
		{CmdIntrospectRPT, "introspect_rpt.response.json", func(t *testing.T, v any) {
			r := v.(*IntrospectRPTResponse)
			if !r.Active || r.Exp != 1256953732 || r.Iat != 1256912345 || r.Nbf != 0 || r.Sub != "" || r.Aud != nil {
				t.Fatalf("%+v", r)
			}
			if len(r.Permissions) != 1 || r.Permissions[0].ResourceID != "112210f47de98100" ||
				!slices.Equal(r.Permissions[0].ResourceScopes, []string{"view", "http://photoz.example.com/dev/actions/print"}) || r.Permissions[0].Exp != 1256953732 {
				t.Fatalf("%+v", r.Permissions)
			}
		}},
		{CmdUMARSCheckAccess, "uma_rs_check_access.granted.response.json", func(t *testing.T, v any) {
			if r := v.(*UMARSCheckAccessResponse); *r != (UMARSCheckAccessResponse{Access: AccessGranted}) {
				t.Fatalf("%+v", r)
			}
		}},
		{CmdUMARSCheckAccess, "uma_rs_check_access.denied.response.json", func(t *testing.T, v any) {
			r := v.(*UMARSCheckAccessResponse)
			if r.Access != AccessDenied || r.Ticket != "d8d9f335-d44e-4854-9cca-abb73755bda8" ||
				r.WWWAuthenticateHeader != `UMA realm="rs",as_uri="https://gluu.local.org",error="insufficient_scope",ticket="d8d9f335-d44e-4854-9cca-abb73755bda8"` {
				t.Fatalf("%+v", r)
			}
		}},
		{CmdUMARPGetRPT, "uma_rp_get_rpt.response.json", func(t *testing.T, v any) {
			r := v.(*UMARPGetRPTResponse)
			if r.AccessToken != "SSJHBSUSSJHVhjsgvhsgvshgsv" || r.TokenType != "Bearer" || r.PCT != "c2F2ZWRjb25zZW50" || r.Updated {
				t.Fatalf("%+v", r)
			}
		}},
		{CmdUMARPGetClaimsGatheringURL, "uma_rp_get_claims_gathering_url.response.json", func(t *testing.T, v any) {
			r := v.(*UMARPGetClaimsGatheringURLResponse)
			if r.State != "d871gpie16np0f5kfv936sc33k" || !strings.HasSuffix(r.URL, "&state=d871gpie16np0f5kfv936sc33k") {
				t.Fatalf("%+v", r)
			}
		}},
		{CmdGetRP, "get_rp.response.json", func(t *testing.T, v any) {
			r := v.(*GetRPResponse)
			var node map[string]any
			if err := json.Unmarshal(r.Node, &node); err != nil || node["oxd_id"] != oxdID || node["setup_client_id"] == nil {
				t.Fatalf("%v %v", err, node["oxd_id"])
			}
			if _, err := r.Sites(); !errors.Is(err, ErrProtocol) {
				t.Fatalf("Sites on a single node: %v", err)
			}
		}},
		{CmdGetRP, "get_rp.list.response.json", func(t *testing.T, v any) {
			sites, err := v.(*GetRPResponse).Sites()
			if err != nil || len(sites) != 2 || sites[0] != (RPSummary{OxdID: oxdID, ClientName: "oxd_go_client"}) || sites[1].ClientName != "oxd_go_setup_client" {
				t.Fatalf("%v %+v", err, sites)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			v, err := decodeFixture(t, tc.cmd, "socket-3.1/"+tc.file)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, v)
		})
	}
}

// TestErrorFixtures decodes every error answer into *Error and checks the
// predicates callers branch on.
func TestErrorFixtures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "socket-3.1", "errors", "*.response.json"))
	more, _ := filepath.Glob(filepath.Join("testdata", "socket-3.1", "*.response.json"))
	for _, f := range more {
		var env struct{ Status string }
		b, _ := os.ReadFile(f)
		if json.Unmarshal(b, &env) == nil && env.Status == "error" {
			files = append(files, f)
		}
	}
	if len(files) < 20 {
		t.Fatalf("only %d error fixtures", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b, _ := os.ReadFile(f)
			var want struct {
				Data struct {
					Error       string          `json:"error"`
					Description string          `json:"error_description"`
					Details     json.RawMessage `json:"details"`
				} `json:"data"`
			}
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			var res struct{}
			err := DecodeEnvelope("cmd", b, &res)
			e := asOxdError(t, err)
			if e.Code != want.Data.Error || e.Description != want.Data.Description || e.Command != "cmd" {
				t.Fatalf("got %+v", e)
			}
			if string(want.Data.Details) == "null" && e.Details != nil {
				t.Fatal("details null not nil")
			}
			if !strings.Contains(err.Error(), e.Code) {
				t.Fatalf("message %q", err)
			}
			// Predicates.
			code := e.Code
			if got := IsProtectionTokenError(err); got != strings.Contains(code, "protection_access_token") {
				t.Errorf("IsProtectionTokenError = %v", got)
			}
			if got := IsGenericInternalError(err); got != (name == "internal_error.response.json") {
				t.Errorf("IsGenericInternalError = %v", got)
			}
			if got := IsStateNotRegistered(err); got != (name == "bad_request_state_not_valid.response.json") {
				t.Errorf("IsStateNotRegistered = %v", got)
			}
			if got := IsInvalidOxdID(err); got != (code == CodeInvalidOxdID) {
				t.Errorf("IsInvalidOxdID = %v", got)
			}
			if got := IsNeedInfo(err); got != (code == CodeNeedInfo) {
				t.Errorf("IsNeedInfo = %v", got)
			}
			if got := errors.Is(err, ErrUnsupportedCommand); got != (code == CodeUnsupportedOperation) {
				t.Errorf("ErrUnsupportedCommand = %v", got)
			}
			if got := errors.Is(err, ErrUMAProtectionExists); got != (code == CodeUMAProtectionExists) {
				t.Errorf("ErrUMAProtectionExists = %v", got)
			}
			wantStatus := 0
			if n, ok := strings.CutPrefix(code, "http_status_"); ok {
				wantStatus, _ = strconv.Atoi(n)
			}
			if HTTPStatus(err) != wantStatus {
				t.Errorf("HTTPStatus = %d, want %d", HTTPStatus(err), wantStatus)
			}
		})
	}
}

func TestNeedInfoDetails(t *testing.T) {
	_, err := decodeFixture(t, CmdUMARPGetRPT, "socket-3.1/uma_rp_get_rpt.need_info.response.json")
	if !IsNeedInfo(err) {
		t.Fatalf("not need_info: %v", err)
	}
	ni, ok := asOxdError(t, err).NeedInfo()
	if !ok {
		t.Fatal("no need_info details")
	}
	if ni.Ticket != "ZXJyb3JfZGV0YWlscw==" || ni.RedirectUser != "https://as.example.com/rqp_claims?id=2346576421" || ni.Error != "need_info" {
		t.Fatalf("%+v", ni)
	}
	want := RequiredClaim{
		ClaimTokenFormat: []string{"http://openid.net/specs/openid-connect-core-1_0.html#IDToken"},
		ClaimType:        "urn:oid:0.9.2342.19200300.100.1.3", FriendlyName: "email",
		Issuer: []string{"https://example.com/idp"}, Name: "email23423453ou453",
	}
	if len(ni.RequiredClaims) != 1 || !reflect.DeepEqual(ni.RequiredClaims[0], want) {
		t.Fatalf("%+v", ni.RequiredClaims)
	}
	// Other errors have no need_info details.
	_, err = decodeFixture(t, CmdUMARPGetRPT, "socket-3.1/uma_rp_get_rpt.as_http_error.response.json")
	if _, ok := asOxdError(t, err).NeedInfo(); ok || HTTPStatus(err) != 400 {
		t.Fatal("http_status_400 read as need_info")
	}
	if !strings.Contains(asOxdError(t, err).Description, "invalid_ticket") {
		t.Fatal("OP body not kept as description")
	}
}

// TestCapturedWireResponses decodes the real oxd-server answers captured in
// oxd-php's logs (3.0.x and 3.1.0): older shapes (no details, no
// client_id_of_oxd_id, no null tokens), other key orders.
func TestCapturedWireResponses(t *testing.T) {
	cases := map[string]func(t *testing.T, payload []byte){
		"get_authorization_url.oxd-3.0.x": func(t *testing.T, p []byte) {
			var r GetAuthorizationURLResponse
			mustDecode(t, CmdGetAuthorizationURL, p, &r)
			if !strings.Contains(r.AuthorizationURL, "&acr_values=basic+duo+u2f+gplus+oxpush2") {
				t.Fatal(r.AuthorizationURL)
			}
		},
		"get_client_token.oxd-3.1.0": func(t *testing.T, p []byte) {
			var r TokenResponse
			mustDecode(t, CmdGetClientToken, p, &r)
			if r.Scope != "openid profile uma_protection uma_authorization email" || r.ExpiresIn != 299 || len(r.AccessToken) != 36 || r.RefreshToken != "" {
				t.Fatalf("%+v", r)
			}
		},
		"get_logout_uri.oxd-3.0.x": func(t *testing.T, p []byte) {
			var r GetLogoutURIResponse
			mustDecode(t, CmdGetLogoutURI, p, &r)
			if !strings.Contains(r.URI, "end_session?id_token_hint=") {
				t.Fatal(r.URI)
			}
		},
		"get_tokens_by_code.oxd-3.0.x": func(t *testing.T, p []byte) {
			var r GetTokensByCodeResponse
			mustDecode(t, CmdGetTokensByCode, p, &r)
			if iat, _ := r.IDTokenClaims.Int("iat"); iat != 1492069857 || r.IDTokenClaims.String("oxOpenIDConnectVersion") != "openidconnect-1.0" || r.ExpiresIn != 299 {
				t.Fatalf("%+v", r.IDTokenClaims)
			}
		},
		"get_user_info.oxd-3.0.x": func(t *testing.T, p []byte) {
			var r GetUserInfoResponse
			mustDecode(t, CmdGetUserInfo, p, &r)
			if r.Claims.String("family_name") != "xxxx" || len(r.Claims) != 4 {
				t.Fatalf("%+v", r.Claims)
			}
		},
		"get_user_info.oxd-3.1.0": func(t *testing.T, p []byte) {
			var r GetUserInfoResponse
			mustDecode(t, CmdGetUserInfo, p, &r)
			if r.Claims.String("email") != "xxxxx@xxxxxxxx.xxx" || !r.AccessToken.IsZero() {
				t.Fatalf("%+v", r)
			}
		},
		"internal_error.oxd-3.0.x": func(t *testing.T, p []byte) {
			err := DecodeEnvelope("x", p, nil)
			if !IsGenericInternalError(err) || asOxdError(t, err).Details != nil {
				t.Fatalf("%v", err)
			}
		},
		"register_site.oxd-3.0.x": func(t *testing.T, p []byte) {
			var r RegisterSiteResponse
			mustDecode(t, CmdRegisterSite, p, &r)
			if r.OxdID != "a16c1fdc-f3c6-4078-8957-37f0103d87cd" || r.OPHost != "https://ce-dev2.gluu.org" {
				t.Fatalf("%+v", r)
			}
		},
		"setup_client.oxd-3.1.0": func(t *testing.T, p []byte) {
			var r SetupClientResponse
			mustDecode(t, CmdSetupClient, p, &r)
			if r.OxdID != "c4232cee-01bd-48b9-a2f7-a2088acfaa0d" || r.ClientIDOfOxdID != "" || r.ClientIDIssuedAt != 1504288602 || r.ClientSecretExpiresAt != 1504375002 {
				t.Fatalf("%+v", r)
			}
		},
		"update_site_registration.oxd-3.0.x": func(t *testing.T, p []byte) {
			var r OxdIDResponse
			mustDecode(t, CmdUpdateSite, p, &r)
			if r.OxdID != "a16c1fdc-f3c6-4078-8957-37f0103d87cd" {
				t.Fatal(r)
			}
		},
	}
	for name, check := range cases {
		t.Run(name, func(t *testing.T) {
			raw := readFixture(t, "captured-oxd-php-logs/"+name+".response.wire.txt")
			n, err := strconv.Atoi(string(raw[:4]))
			if err != nil || n != len(raw)-4 { // ASCII captures: units = bytes
				t.Fatalf("prefix %q does not match %d bytes", raw[:4], len(raw)-4)
			}
			check(t, raw[4:])
		})
	}
}

func mustDecode(t *testing.T, cmd string, payload []byte, res any) {
	t.Helper()
	if err := DecodeEnvelope(cmd, payload, res); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeEnvelopeUnknownKeysAndOrder(t *testing.T) {
	body := `{"data":{"future":{"x":[1,2]},"op_host":"h","oxd_id":"o","client_name":"n"},"version":"9","status":"ok"}`
	var r RegisterSiteResponse
	if err := DecodeEnvelope(CmdRegisterSite, []byte(body), &r); err != nil || r.OxdID != "o" || r.OPHost != "h" {
		t.Fatalf("%v %+v", err, r)
	}
	// Keys after data (the fast path must not take the wrong closing brace).
	r = RegisterSiteResponse{}
	if err := DecodeEnvelope(CmdRegisterSite, []byte(`{"status":"ok","data":{"oxd_id":"o"},"extra":{"oxd_id":"x"}}`), &r); err != nil || r.OxdID != "o" {
		t.Fatalf("%v %+v", err, r)
	}
	// data:null with status ok (validate) is success.
	if err := DecodeEnvelope("validate", []byte(`{"status":"ok","data":null}`), &r); err != nil {
		t.Fatal(err)
	}
	errBody := `{"data":{"details":null,"extra":1,"error_description":"d","error":"invalid_state"},"status":"error"}`
	if e := asOxdError(t, DecodeEnvelope("x", []byte(errBody), nil)); e.Code != CodeInvalidState || e.Description != "d" {
		t.Fatalf("%+v", e)
	}
}

func TestDecodeEnvelopeMalformed(t *testing.T) {
	for _, body := range []string{
		``, `null`, `[]`, `{"status":"ok","data":`, `{"status":"maybe","data":{}}`, `{"data":{}}`,
		`{"status":"error","data":null}`, `{"status":"error","data":{"error_description":"x"}}`,
		`{"status":"error","data":{"error":1}}`, `{"status":"ok","data":{"oxd_id":5}}`, `{"status":"ok","data":"x"}`,
	} {
		var r RegisterSiteResponse
		err := DecodeEnvelope("x", []byte(body), &r)
		te := asTransportError(t, err)
		if !errors.Is(err, ErrProtocol) || !te.Sent {
			t.Errorf("%q: %v", body, err)
		}
	}
}

func TestUpdatedUpgraded(t *testing.T) {
	for body, want := range map[string]bool{
		`{"access_token":"a","updated":true}`:                   true,
		`{"access_token":"a","upgraded":true}`:                  true,
		`{"access_token":"a","updated":false,"upgraded":false}`: false,
		`{"access_token":"a","updated":null,"upgraded":null}`:   false,
		`{"access_token":"a"}`:                                  false,
	} {
		var r UMARPGetRPTResponse
		if err := DecodeEnvelope(CmdUMARPGetRPT, []byte(`{"status":"ok","data":`+body+`}`), &r); err != nil {
			t.Fatal(err)
		}
		if r.Updated != want || r.AccessToken != "a" {
			t.Errorf("%s: %+v", body, r)
		}
	}
}

// TestClaimsShapes: 3.x string arrays and 4.x raw JSON values.
func TestClaimsShapes(t *testing.T) {
	var c Claims
	if err := json.Unmarshal([]byte(`{"a":["x","y"],"exp3":["1311281970"],"exp4":1311281970,"f":1.5e9,"s":"one","b":true,"n":null,"o":{"k":"v"},"e":[]}`), &c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Strings("a"), []string{"x", "y"}) || c.String("a") != "x" {
		t.Error("array")
	}
	for _, k := range []string{"exp3", "exp4"} {
		if n, ok := c.Int(k); !ok || n != 1311281970 {
			t.Errorf("%s: %d %v", k, n, ok)
		}
	}
	if n, ok := c.Int("f"); !ok || n != 1500000000 {
		t.Errorf("float: %d", n)
	}
	if c.String("s") != "one" || c.String("b") != "true" || c.Strings("n") != nil || c.String("o") != `{"k":"v"}` || c.Strings("e") == nil || len(c.Strings("e")) != 0 {
		t.Errorf("scalars: %q %q %v %q", c.String("s"), c.String("b"), c.Strings("n"), c.String("o"))
	}
	if _, ok := c.Int("s"); ok {
		t.Error("Int of a string")
	}
}

func TestStringList(t *testing.T) {
	for in, want := range map[string][]string{
		`"a b  c"`: {"a", "b", "c"}, `["a","b"]`: {"a", "b"}, `null`: nil, `""`: nil,
	} {
		var l StringList
		if err := json.Unmarshal([]byte(in), &l); err != nil || !slices.Equal(l, want) {
			t.Errorf("%s: %v %v", in, l, err)
		}
	}
	var l StringList
	if err := json.Unmarshal([]byte(`5`), &l); err == nil {
		t.Error("number accepted")
	}
}

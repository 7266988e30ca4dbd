package devop_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/oxdgo/oxd/oxdtest/devop"
)

// Example starts a development OP on a loopback port, registers a client
// dynamically, signs in as the demo user alice (in process, through the
// login form) and redeems the code with PKCE.
func Example() {
	op, err := devop.StartOP(devop.OPConfig{})
	if err != nil {
		panic(err)
	}
	defer op.Close()

	// Dynamic client registration (RFC 7591), as oxd's register_site does.
	meta := `{"redirect_uris":["http://127.0.0.1:8080/callback"],
	          "grant_types":["authorization_code","refresh_token"],
	          "scope":"openid profile email"}`
	res, err := http.Post(op.Issuer()+"/register", "application/json", strings.NewReader(meta))
	if err != nil {
		panic(err)
	}
	var client struct{ ClientID, ClientSecret string }
	var raw map[string]any
	_ = json.NewDecoder(res.Body).Decode(&raw)
	res.Body.Close()
	client.ClientID, client.ClientSecret = raw["client_id"].(string), raw["client_secret"].(string)

	// Authorization request with state, nonce and PKCE (S256).
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	authURL := op.Issuer() + "/authorize?" + url.Values{
		"response_type":         {"code"},
		"client_id":             {client.ClientID},
		"redirect_uri":          {"http://127.0.0.1:8080/callback"},
		"scope":                 {"openid profile"},
		"state":                 {"xyz"},
		"nonce":                 {"n-0S6"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}.Encode()
	callback, err := op.Login(context.Background(), authURL, "alice", "alice-password")
	if err != nil {
		panic(err)
	}
	fmt.Println("state:", callback.Query().Get("state"))

	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {callback.Query().Get("code")},
		"redirect_uri":  {"http://127.0.0.1:8080/callback"},
		"code_verifier": {verifier},
	}
	req, _ := http.NewRequest(http.MethodPost, op.Issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client.ClientID, client.ClientSecret)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	fmt.Println("token type:", tok["token_type"], "scope:", tok["scope"])
	fmt.Println("has id_token:", tok["id_token"] != nil, "has refresh_token:", tok["refresh_token"] != nil)
	// Output:
	// state: xyz
	// token type: Bearer scope: openid profile
	// has id_token: true has refresh_token: true
}

// ExampleNewOP mounts the OP under a path of an existing server, as the
// demo application does with https://127.0.0.1:8443/op. The issuer is the
// public URL; cookies are Secure because it is https.
func ExampleNewOP() {
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	defer srv.Close()

	op, err := devop.NewOP(srv.URL+"/op", devop.OPConfig{})
	if err != nil {
		panic(err)
	}
	defer op.Close()
	mux.Handle("/op/", op)

	res, err := srv.Client().Get(op.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	var d map[string]any
	_ = json.NewDecoder(res.Body).Decode(&d)
	fmt.Println(strings.TrimPrefix(d["token_endpoint"].(string), srv.URL))
	// Output: /op/token
}

// ExampleOPConfig_uMAPolicy replaces the default UMA policy: requesting
// parties must have the claim "role" set to "editor" to get the scope
// "edit"; they are asked for it on the claims-gathering page.
func ExampleOPConfig_uMAPolicy() {
	policy := func(req devop.PolicyRequest) devop.PolicyDecision {
		for _, s := range req.Scopes {
			if s != "edit" {
				continue
			}
			switch req.Claims["role"] {
			case "":
				return devop.NeedInfo("role")
			case "editor":
				return devop.Grant()
			default:
				return devop.Deny()
			}
		}
		return devop.DefaultPolicy(req)
	}
	fmt.Println(policy(devop.PolicyRequest{Scopes: []string{"edit"}}))
	fmt.Println(policy(devop.PolicyRequest{Scopes: []string{"edit"}, Claims: map[string]string{"role": "editor"}}))
	fmt.Println(policy(devop.PolicyRequest{Scopes: []string{"view"}}))
	// Output:
	// need_info(role)
	// grant
	// grant
}

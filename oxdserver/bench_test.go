package oxdserver_test

// Benchmark P5 of the design (§5): a full login through the engine against
// the same calls made straight to the OP, side by side in one run:
//
//	go test -run '^$' -bench '^BenchmarkLogin$' -benchmem -count 3 ./oxdserver
//
// Target: engine ≤ 1.3× direct. Both sides talk to a development OP on
// loopback HTTP, log in with the OP's in-process login form (OP.Login) and
// use the same registered client, so the OP does the same work for both;
// the difference is the cost of the engine (parameter and answer coding,
// state/nonce/PKCE bookkeeping in its store, id_token validation, claims
// conversion). The direct side does what a careful relying party does by
// hand: state, nonce and PKCE S256, a pending-login table, the code
// exchange with client_secret_basic, full id_token validation with go-jose
// (signature with the JWKS key named by kid, iss, aud/azp, exp, iat,
// nonce, at_hash) and userinfo, with discovery and JWKS fetched once
// (the engine caches them too).

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

const (
	benchUser     = "alice"
	benchPassword = "alice-password"
)

func BenchmarkLogin(b *testing.B) {
	b.Run("engine", func(b *testing.B) {
		srv := oxdtest.NewServer(b)
		ctx := context.Background()
		login := func() error { return engineLogin(ctx, srv) }
		if err := login(); err != nil { // discovery and JWKS into the caches
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := login(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		srv := oxdtest.NewServer(b)
		ctx := context.Background()
		rp, err := newDirectRP(ctx, srv)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(rp.close)
		if err := rp.login(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := rp.login(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// engineLogin: get_authorization_url → login form at the OP →
// get_tokens_by_code → get_user_info, through the in-process engine.
func engineLogin(ctx context.Context, srv *oxdtest.Server) error {
	au, err := srv.Client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: srv.OxdID})
	if err != nil {
		return err
	}
	cb, err := srv.OP.Login(ctx, au.AuthorizationURL, benchUser, benchPassword)
	if err != nil {
		return err
	}
	q := cb.Query()
	if q.Get("code") == "" {
		return fmt.Errorf("no code in the redirect (error=%q)", q.Get("error"))
	}
	tok, err := srv.Client.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{
		OxdID: srv.OxdID, Code: oxdclient.Secret(q.Get("code")), State: q.Get("state"),
	})
	if err != nil {
		return err
	}
	ui, err := srv.Client.GetUserInfo(ctx, oxdclient.GetUserInfoParams{OxdID: srv.OxdID, AccessToken: tok.AccessToken})
	if err != nil {
		return err
	}
	if sub := ui.Claims.String("sub"); sub != benchUser || tok.IDTokenClaims.String("sub") != sub {
		return fmt.Errorf("unexpected subject %q", sub)
	}
	return nil
}

// directRP is a relying party written straight against the OP with
// net/http and go-jose.
type directRP struct {
	op                               *oxdtest.OP
	hc                               *http.Client
	tr                               *http.Transport
	issuer, clientID, secret         string
	redirectURI, scope               string
	authEndpoint, tokenEndpoint      string
	userinfoEndpoint                 string
	keys                             map[string]jose.JSONWebKey // by kid
	mu                               sync.Mutex
	pending                          map[string]pendingLogin // by state
	stateBytes, nonceBytes, pkceSize int
}

type pendingLogin struct {
	nonce, verifier string
	expires         time.Time
}

// newDirectRP uses the client the engine registered for srv's site (same
// metadata, so the OP issues the same tokens and claims), and fetches
// discovery and the JWKS once.
func newDirectRP(ctx context.Context, srv *oxdtest.Server) (*directRP, error) {
	site, err := srv.Engine.Store().GetSite(ctx, srv.OxdID)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	rp := &directRP{
		op: srv.OP, hc: &http.Client{Timeout: 10 * time.Second, Transport: tr}, tr: tr,
		issuer: srv.OP.Issuer(), clientID: site.ClientID, secret: site.ClientSecret,
		redirectURI: site.AuthorizationRedirectURI, scope: strings.Join(site.Scope, " "),
		pending:    map[string]pendingLogin{},
		stateBytes: 20, nonceBytes: 20, pkceSize: 32,
	}
	var disc struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
		UserinfoEndpoint      string `json:"userinfo_endpoint"`
		JWKSURI               string `json:"jwks_uri"`
	}
	if err := rp.getJSON(ctx, rp.issuer+"/.well-known/openid-configuration", "", &disc); err != nil {
		return nil, err
	}
	if disc.Issuer != rp.issuer {
		return nil, errors.New("discovery issuer mismatch")
	}
	rp.authEndpoint, rp.tokenEndpoint, rp.userinfoEndpoint = disc.AuthorizationEndpoint, disc.TokenEndpoint, disc.UserinfoEndpoint
	var set jose.JSONWebKeySet
	if err := rp.getJSON(ctx, disc.JWKSURI, "", &set); err != nil {
		return nil, err
	}
	rp.keys = map[string]jose.JSONWebKey{}
	for _, k := range set.Keys {
		if k.Valid() && k.IsPublic() && (k.Use == "" || k.Use == "sig") {
			rp.keys[k.KeyID] = k
		}
	}
	return rp, nil
}

func (rp *directRP) close() { rp.tr.CloseIdleConnections() }

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authorizationURL starts a login: fresh state, nonce and PKCE verifier,
// remembered under the state (as a session would).
func (rp *directRP) authorizationURL() string {
	state, nonce, verifier := randomString(rp.stateBytes), randomString(rp.nonceBytes), randomString(rp.pkceSize)
	sum := sha256.Sum256([]byte(verifier))
	rp.mu.Lock()
	rp.pending[state] = pendingLogin{nonce: nonce, verifier: verifier, expires: time.Now().Add(5 * time.Minute)}
	rp.mu.Unlock()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {rp.clientID},
		"redirect_uri":          {rp.redirectURI},
		"scope":                 {rp.scope},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	return rp.authEndpoint + "?" + q.Encode()
}

func (rp *directRP) login(ctx context.Context) error {
	cb, err := rp.op.Login(ctx, rp.authorizationURL(), benchUser, benchPassword)
	if err != nil {
		return err
	}
	q := cb.Query()
	code, state := q.Get("code"), q.Get("state")
	if code == "" {
		return fmt.Errorf("no code in the redirect (error=%q)", q.Get("error"))
	}
	rp.mu.Lock()
	pl, ok := rp.pending[state]
	delete(rp.pending, state) // single use
	rp.mu.Unlock()
	if !ok || time.Now().After(pl.expires) {
		return errors.New("unknown or expired state")
	}

	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {rp.redirectURI},
		"code_verifier": {pl.verifier},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rp.tokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(rp.clientID), url.QueryEscape(rp.secret))
	var tok struct {
		AccessToken  string `json:"access_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int64  `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
	}
	if err := rp.doJSON(req, &tok); err != nil {
		return err
	}
	if tok.AccessToken == "" || tok.IDToken == "" {
		return errors.New("token answer without access_token or id_token")
	}
	claims, err := rp.validateIDToken(tok.IDToken, tok.AccessToken, pl.nonce)
	if err != nil {
		return err
	}

	var ui map[string]any
	if err := rp.getJSON(ctx, rp.userinfoEndpoint, tok.AccessToken, &ui); err != nil {
		return err
	}
	if ui["sub"] != benchUser || claims["sub"] != benchUser {
		return fmt.Errorf("unexpected subject %v", ui["sub"])
	}
	return nil
}

// validateIDToken checks what the engine checks (OIDC Core §3.1.3.7).
func (rp *directRP) validateIDToken(raw, accessToken, nonce string) (map[string]any, error) {
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("id_token: not exactly one signature")
	}
	hdr := jws.Signatures[0].Header
	key, ok := rp.keys[hdr.KeyID]
	if !ok {
		return nil, errors.New("id_token: unknown key id")
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	now, skew := time.Now(), time.Minute
	if claims["iss"] != rp.issuer {
		return nil, errors.New("id_token: bad issuer")
	}
	switch aud := claims["aud"].(type) {
	case string:
		if aud != rp.clientID {
			return nil, errors.New("id_token: bad audience")
		}
	case []any:
		found := false
		for _, a := range aud {
			found = found || a == rp.clientID
		}
		if !found || claims["azp"] != rp.clientID {
			return nil, errors.New("id_token: bad audience")
		}
	default:
		return nil, errors.New("id_token: no audience")
	}
	if azp, ok := claims["azp"]; ok && azp != rp.clientID {
		return nil, errors.New("id_token: bad azp")
	}
	exp, ok1 := claims["exp"].(float64)
	iat, ok2 := claims["iat"].(float64)
	if !ok1 || !ok2 || !now.Before(time.Unix(int64(exp), 0).Add(skew)) || time.Unix(int64(iat), 0).After(now.Add(skew)) {
		return nil, errors.New("id_token: expired or issued in the future")
	}
	if n, _ := claims["nonce"].(string); n == "" || subtle.ConstantTimeCompare([]byte(n), []byte(nonce)) != 1 {
		return nil, errors.New("id_token: bad nonce")
	}
	if h, ok := claims["at_hash"].(string); ok {
		sum := sha256.Sum256([]byte(accessToken))
		if h != base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]) {
			return nil, errors.New("id_token: bad at_hash")
		}
	}
	return claims, nil
}

func (rp *directRP) getJSON(ctx context.Context, u, bearer string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return rp.doJSON(req, out)
}

func (rp *directRP) doJSON(req *http.Request, out any) error {
	res, err := rp.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", req.URL.Path, res.StatusCode)
	}
	return json.Unmarshal(body, out)
}

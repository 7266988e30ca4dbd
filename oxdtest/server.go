package oxdtest

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
)

// Default URIs registered by NewServer. Nothing listens on them: tests read
// the code and state from the redirect instead of following it.
const (
	DefaultRedirectURI           = "https://rp.example.test/callback"
	DefaultPostLogoutRedirectURI = "https://rp.example.test/logged-out"
	DefaultClaimsRedirectURI     = "https://rp.example.test/claims-callback"
)

// Server is a development OP with an oxd engine in front of it and a site
// registered through setup_client: everything a test of code that speaks
// oxd needs, in process and on loopback. Create it with NewServer.
type Server struct {
	// OP is the development OP (on a 127.0.0.1 port).
	OP *OP
	// Engine is the oxd engine. Its store and OP calls are real.
	Engine *oxdserver.Engine
	// Client talks to Engine in process (no network hop). With
	// WithProtection it attaches protection tokens by itself.
	Client *oxdclient.Client
	// OxdID is the regular site created by setup_client; ClientID is its
	// client_id at the OP.
	OxdID, ClientID string
	// Setup is the full setup_client answer (it holds the setup client's
	// secret).
	Setup *oxdclient.SetupClientResponse
	// Protection holds the setup client's credentials, for minting
	// protection access tokens with get_client_token (scope "oxd").
	Protection oxdclient.ProtectionCredentials
	// The URIs the site was registered with.
	RedirectURI, PostLogoutRedirectURI, ClaimsRedirectURI string
}

type serverOptions struct {
	op         OPConfig
	engine     oxdserver.Config
	redirect   string
	postLogout string
	claims     string
	scope      []string
	protect    bool
	clientName string
	authMethod string
	backURI    string
	frontURI   string
	opHost     func(issuer string) string
}

// ServerOption configures NewServer.
type ServerOption func(*serverOptions)

// WithOPConfig configures the development OP (users, lifetimes, UMA
// policy, clock…).
func WithOPConfig(cfg OPConfig) ServerOption { return func(o *serverOptions) { o.op = cfg } }

// WithEngineConfig configures the engine (store, TTLs, logger…).
// InsecureAllowLoopbackHTTP is always set (the development OP speaks plain
// http on loopback).
func WithEngineConfig(cfg oxdserver.Config) ServerOption {
	return func(o *serverOptions) { o.engine = cfg }
}

// WithRedirectURIs sets the authorization, post-logout and claims redirect
// URIs of the site (empty values keep the defaults).
func WithRedirectURIs(authorization, postLogout, claims string) ServerOption {
	return func(o *serverOptions) {
		if authorization != "" {
			o.redirect = authorization
		}
		if postLogout != "" {
			o.postLogout = postLogout
		}
		if claims != "" {
			o.claims = claims
		}
	}
}

// WithScopes sets the scopes the site registers (default openid, profile,
// email; setup_client adds uma_protection).
func WithScopes(scopes ...string) ServerOption {
	return func(o *serverOptions) { o.scope = append([]string(nil), scopes...) }
}

// WithProtection makes Server.Client use the engine's ProtectedTransport
// (checked like a listener) and obtain protection access tokens from the
// setup client, as a protected oxd-server (or its HTTPS extension)
// requires.
func WithProtection() ServerOption { return func(o *serverOptions) { o.protect = true } }

// WithClientAuthMethod sets the token_endpoint_auth_method of the site's
// client (client_token_endpoint_auth_method of setup_client): one of
// client_secret_basic (the default of NewServer, so that tests which move
// the OP's clock stay independent of client assertion lifetimes),
// client_secret_post, client_secret_jwt, private_key_jwt or none; "" lets
// the engine choose the strongest method the OP lists.
func WithClientAuthMethod(method string) ServerOption {
	return func(o *serverOptions) { o.authMethod = method }
}

// WithLogoutURIs registers the site's back-channel logout URI
// (client_backchannel_logout_uri) and front-channel logout URI
// (client_frontchannel_logout_uris); empty values register none. The
// development OP then notifies them at end_session.
func WithLogoutURIs(backChannel, frontChannel string) ServerOption {
	return func(o *serverOptions) { o.backURI, o.frontURI = backChannel, frontChannel }
}

// WithOPHost sets the site's op_host from the OP's issuer (default: the
// issuer itself), for tests of an op_host written otherwise than the
// issuer, e.g. with a trailing slash.
func WithOPHost(fromIssuer func(issuer string) string) ServerOption {
	return func(o *serverOptions) { o.opHost = fromIssuer }
}

// WithClientName sets the client_name of the site.
func WithClientName(name string) ServerOption { return func(o *serverOptions) { o.clientName = name } }

// NewServer starts a development OP and an engine, registers a site with
// setup_client and returns them ready to use. Everything is closed when
// the test ends. It fails the test if anything goes wrong.
func NewServer(t testing.TB, opts ...ServerOption) *Server {
	t.Helper()
	o := serverOptions{
		redirect:   DefaultRedirectURI,
		postLogout: DefaultPostLogoutRedirectURI,
		claims:     DefaultClaimsRedirectURI,
		scope:      []string{"openid", "profile", "email"},
		clientName: "oxdtest site",
		authMethod: "client_secret_basic",
	}
	for _, opt := range opts {
		opt(&o)
	}
	op := NewTestOP(t, o.op)
	opHost := op.Issuer()
	if o.opHost != nil {
		opHost = o.opHost(opHost)
	}
	ecfg := o.engine
	ecfg.InsecureAllowLoopbackHTTP = true
	eng, err := oxdserver.New(ecfg)
	if err != nil {
		t.Fatalf("oxdtest: start engine: %v", err)
	}
	t.Cleanup(func() { _ = eng.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	setup, err := oxdclient.New(eng, oxdclient.Config{}).SetupClient(ctx, oxdclient.SetupClientParams{
		SiteParams: oxdclient.SiteParams{
			OPHost:                   opHost,
			AuthorizationRedirectURI: o.redirect,
			PostLogoutRedirectURI:    o.postLogout,
			ClaimsRedirectURI:        []string{o.claims},
			Scope:                    o.scope,
			ClientName:               o.clientName,
			// The setup client keeps client_secret_basic (its secret goes
			// to get_client_token).
			ClientTokenEndpointAuthMethod: o.authMethod,
			ClientBackchannelLogoutURI:    o.backURI,
			ClientFrontchannelLogoutURIs:  nonEmpty(o.frontURI),
		},
		SetupClientName: o.clientName + " (setup)",
	})
	if err != nil {
		t.Fatalf("oxdtest: setup_client: %v", err)
	}
	creds := oxdclient.ProtectionCredentials{
		ClientID:     setup.ClientID,
		ClientSecret: setup.ClientSecret,
		OPHost:       opHost,
		Scope:        []string{"openid", "oxd", "uma_protection"},
	}
	ccfg := oxdclient.Config{}
	var tr oxdclient.Transport = eng
	if o.protect {
		c := creds
		ccfg.Protection = &c
		tr = eng.ProtectedTransport()
	}
	return &Server{
		OP:                    op,
		Engine:                eng,
		Client:                oxdclient.New(tr, ccfg),
		OxdID:                 setup.OxdID,
		ClientID:              setup.ClientIDOfOxdID,
		Setup:                 setup,
		Protection:            creds,
		RedirectURI:           o.redirect,
		PostLogoutRedirectURI: o.postLogout,
		ClaimsRedirectURI:     o.claims,
	}
}

// ErrNoCode is returned when the OP's redirect carries no authorization
// code (an error parameter, or no redirect at all).
var ErrNoCode = errors.New("oxdtest: no authorization code in the redirect")

// Login runs the first half of a login through oxd: get_authorization_url
// for the server's site, then the OP's login form (in process) as
// username. It returns the code and state of the redirect, ready for
// get_tokens_by_code.
func (s *Server) Login(ctx context.Context, username, password string) (code, state string, err error) {
	au, err := s.Client.GetAuthorizationURL(ctx, oxdclient.GetAuthorizationURLParams{OxdID: s.OxdID})
	if err != nil {
		return "", "", err
	}
	cb, err := s.OP.Login(ctx, au.AuthorizationURL, username, password)
	if err != nil {
		return "", "", err
	}
	return codeAndState(cb)
}

// LoginTokens runs a whole login through oxd (authorization URL, login
// form, get_tokens_by_code) and returns the tokens.
func (s *Server) LoginTokens(ctx context.Context, username, password string) (*oxdclient.GetTokensByCodeResponse, error) {
	code, state, err := s.Login(ctx, username, password)
	if err != nil {
		return nil, err
	}
	return s.Client.GetTokensByCode(ctx, oxdclient.GetTokensByCodeParams{OxdID: s.OxdID, Code: oxdclient.Secret(code), State: state})
}

func codeAndState(cb *url.URL) (string, string, error) {
	q := cb.Query()
	if e := q.Get("error"); e != "" {
		return "", "", fmt.Errorf("%w: the OP answered error=%q", ErrNoCode, e)
	}
	if q.Get("code") == "" {
		return "", "", ErrNoCode
	}
	return q.Get("code"), q.Get("state"), nil
}

var (
	formAction       = regexp.MustCompile(`<form[^>]*\saction="([^"]*)"`)
	interactionInput = regexp.MustCompile(`<input[^>]*name="interaction"[^>]*value="([^"]*)"`)
)

// maxPage bounds the pages BrowserLogin reads.
const maxPage = 1 << 20

// BrowserLogin signs in at the development OP over real HTTP, as a
// browser with a cookie jar would: it opens authURL (an authorization
// request to the OP), fills the login form (input[name=username],
// input[name=password]) and submits it, following redirects within the
// OP. It returns the first redirect that leaves the OP (normally the
// client's redirect_uri with code and state) without following it.
//
// hc may be nil (a fresh client with a cookie jar is used); a given client
// must have a Jar for the OP's cookies, and its CheckRedirect is not used.
func BrowserLogin(ctx context.Context, hc *http.Client, authURL, username, password string) (*url.URL, error) {
	start, err := url.Parse(authURL)
	if err != nil {
		return nil, fmt.Errorf("oxdtest: browser login: parse authorization URL: %w", err)
	}
	if hc == nil {
		jar, _ := cookiejar.New(nil)
		hc = &http.Client{Jar: jar, Timeout: 30 * time.Second}
	}
	if hc.Jar == nil {
		return nil, errors.New("oxdtest: browser login: the http.Client needs a cookie jar")
	}
	c := *hc
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse }

	// do follows redirects that stay on the OP's host; it returns the
	// final page, or the URL of a redirect that leaves the OP.
	do := func(req *http.Request) (body string, leave *url.URL, err error) {
		for range 10 {
			res, err := c.Do(req)
			if err != nil {
				return "", nil, err
			}
			b, err := io.ReadAll(io.LimitReader(res.Body, maxPage))
			res.Body.Close()
			if err != nil {
				return "", nil, err
			}
			if res.StatusCode < 300 || res.StatusCode > 399 {
				if res.StatusCode != http.StatusOK {
					return "", nil, fmt.Errorf("%w: the OP answered %d", ErrLoginFailed, res.StatusCode)
				}
				return string(b), nil, nil
			}
			loc, err := res.Location()
			if err != nil {
				return "", nil, fmt.Errorf("%w: redirect without Location", ErrLoginFailed)
			}
			if loc.Host != start.Host || loc.Scheme != start.Scheme {
				return "", loc, nil
			}
			req, err = http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
			if err != nil {
				return "", nil, err
			}
		}
		return "", nil, fmt.Errorf("%w: too many redirects", ErrLoginFailed)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, start.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("oxdtest: browser login: %w", err)
	}
	page, leave, err := do(req)
	if err != nil || leave != nil {
		return leave, err
	}
	action := formAction.FindStringSubmatch(page)
	inter := interactionInput.FindStringSubmatch(page)
	if action == nil || inter == nil || !strings.Contains(page, `name="username"`) || !strings.Contains(page, `name="password"`) {
		return nil, fmt.Errorf("%w: no login form", ErrLoginFailed)
	}
	target, err := start.Parse(html.UnescapeString(action[1]))
	if err != nil {
		return nil, fmt.Errorf("%w: bad form action", ErrLoginFailed)
	}
	form := url.Values{
		"interaction": {html.UnescapeString(inter[1])},
		"username":    {username},
		"password":    {password},
	}
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("oxdtest: browser login: %w", err)
	}
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, leave, err = do(post)
	if err != nil {
		return nil, err
	}
	if leave == nil {
		return nil, fmt.Errorf("%w: credentials for %q not accepted", ErrLoginFailed, username)
	}
	return leave, nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

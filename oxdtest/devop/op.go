// Package devop is the development OpenID Provider (OP) of oxd for Go,
// with a UMA 2.0 Authorization Server: the demo application's zero-setup
// embedded OP, the OP of `oxd-server -dev-op`, and the fast loopback OP of
// the project's tests and its users' tests (through package oxdtest,
// which adds the helpers that need *testing.T). It does not import
// package testing, so a program can embed it. It is for development
// only: its users and their passwords are public (DemoUsers).
//
// # Starting an OP
//
// StartOP starts an OP on 127.0.0.1 over plain HTTP (stop it with Close);
// oxdtest.NewTestOP does the same for the duration of a test. NewOP
// returns the OP as an http.Handler for a given issuer URL, for mounting
// into an existing server, for example at https://127.0.0.1:8443/op.
//
// # Endpoints
//
// All paths are relative to the issuer and listed in the discovery
// documents:
//
//	/.well-known/openid-configuration   OpenID Provider metadata
//	/.well-known/uma2-configuration     UMA 2.0 AS metadata
//	/jwks                               RS256 keys, each with a kid
//	/register, /register/{client_id}    dynamic registration (RFC 7591, RFC 7592),
//	                                    unless OPConfig.DisableRegistration
//	/authorize, /login                  code flow with the login form
//	/token                              authorization_code, refresh_token,
//	                                    client_credentials, uma-ticket grants
//	/userinfo                           claims by scope
//	/end_session                        RP-initiated logout
//	/introspect, /revoke                RFC 7662 (with UMA permissions), RFC 7009
//	/uma/resource_set[/{id}]            resource registration (PAT)
//	/uma/permission                     permission tickets (PAT)
//	/uma/claims_gathering               claims interaction page
//
// # Behaviour worth knowing
//
//   - Registration is open (no initial access token); OPConfig.Clients
//     adds pre-registered (static) clients and OPConfig.DisableRegistration
//     removes the registration endpoint, as at OPs without dynamic
//     registration. Redirect URIs (redirect_uris,
//     post_logout_redirect_uris, claims_redirect_uris; oxd's
//     claims_redirect_uri is accepted too) must be absolute http(s) URLs
//     without fragment. Without a scope, a client may use every supported
//     scope.
//   - Client authentication at the token, introspection and revocation
//     endpoints: client_secret_basic, client_secret_post,
//     client_secret_jwt (HS256/384/512 over the secret), private_key_jwt
//     (RS256/PS256/ES256, verified with the client's registered jwks or
//     its jwks_uri fetched at each authentication) and none (public
//     clients send client_id and must use PKCE). Client assertions must
//     have iss = sub = client_id, aud = the token endpoint (or the
//     issuer, or the endpoint called), a future exp and a jti never used
//     before (replays are refused). A client uses its registered method;
//     client_secret_basic and client_secret_post clients may use either
//     one unless OPConfig.StrictClientAuthMethod is set.
//     OPConfig.ClientAuthMethods narrows the methods offered.
//   - The authorization endpoint only answers response_type=code, matches
//     redirect_uri exactly and shows an error page (never a redirect) when
//     client_id or redirect_uri is wrong. It is consent-free. The login
//     form's POST is bound to a cookie of the browser that opened it, which
//     defeats login CSRF. The OP session lasts 12 hours; prompt=login and
//     max_age force a new login, prompt=none answers login_required.
//   - PKCE: only S256. A code_challenge, when sent, is always verified;
//     public clients must send one, and with OPConfig.RequirePKCE every
//     client must.
//   - Codes are single use: redeeming one twice revokes the tokens issued
//     from it. A refresh token is issued whenever the client registered the
//     refresh_token grant (offline_access is not needed, as with the
//     project's certified test OP); refresh tokens rotate on every use and
//     reusing an old one revokes the grant.
//   - ID tokens are RS256 with iss, sub, aud, exp, iat, auth_time, nonce,
//     at_hash, and the profile/email claims the scopes release. RotateKeys
//     switches keys; the previous key stays published until the next
//     rotation.
//   - end_session (RP-Initiated Logout 1.0) signs out at once with a valid
//     id_token_hint (also without client_id or post_logout_redirect_uri);
//     otherwise (client_id only, or nothing) it asks the user to confirm
//     (a "Sign out" button). It redirects to post_logout_redirect_uri
//     (with state) only when that URI is registered for the client named
//     by the hint or by client_id; otherwise it shows a "signed out" page.
//     OPConfig.DisableEndSession removes the endpoint.
//   - Authorization responses (success and error) carry iss (RFC 9207) and
//     discovery says authorization_response_iss_parameter_supported;
//     OPConfig.DisableAuthorizationResponseIss turns both off.
//   - Revocation (RFC 7009): a client revokes its own tokens; a revoked
//     token fails introspection, userinfo and refresh, and revoking a
//     refresh token revokes its grant. OPConfig.DisableRevocation removes
//     the endpoint.
//   - Introspection callers authenticate with client credentials or with a
//     Bearer token carrying scope uma_protection or oxd.
//   - UMA: resources belong to the client of the PAT that registered them.
//     Tickets expire (OPConfig.TicketTTL) and are single use. The
//     uma-ticket grant asks OPConfig.UMAPolicy (default DefaultPolicy) about
//     every permission of the ticket; need_info answers carry a new ticket
//     bound to the client and redirect_user pointing at the claims page.
//     Claims are gathered on that page, pushed as an ID token of this OP
//     (claim_token_format ...#IDToken), or carried by a PCT. Passing an RPT
//     of the same client in rpt adds the permissions to it (upgraded:true).
//   - The claims page accepts a claims_redirect_uri that exactly matches one
//     of the client's claims_redirect_uris or redirect_uris.
//
// # Test hooks
//
// Calls counts requests per endpoint, SetFault makes an endpoint return
// garbage, hang, fail with 500 or sign ID tokens with an unknown key,
// Revoke invalidates a token, OPConfig.Now moves time, and Login drives
// the login form in process to obtain an authorization code.
package devop

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// User is an account of the development OP.
//
// Subject is the stable "sub" claim; Username and Password are what the
// login form accepts. Claims holds the user's other claims (name,
// given_name, family_name, email, email_verified, locale, country, …);
// the OP releases them by scope (see the package documentation).
type User struct {
	Subject  string
	Username string
	Password string
	Claims   map[string]any
}

// DemoUsers are the default accounts of the development OP. Their
// passwords are not secret: the demo application shows them on its login
// help page.
//
//   - "alice" / "alice-password": subject "alice", with a country claim
//     ("DE"), so a pushed ID token satisfies the default UMA policy.
//   - "bob" / "bob-password": subject "bob", without a country claim, so
//     the default UMA policy sends him through claims gathering.
var DemoUsers = []User{
	{
		Subject:  "alice",
		Username: "alice",
		Password: "alice-password",
		Claims: map[string]any{
			"name":           "Alice Example",
			"given_name":     "Alice",
			"family_name":    "Example",
			"email":          "alice@example.test",
			"email_verified": true,
			"locale":         "en-US",
			"country":        "DE",
		},
	},
	{
		Subject:  "bob",
		Username: "bob",
		Password: "bob-password",
		Claims: map[string]any{
			"name":           "Bob Example",
			"given_name":     "Bob",
			"family_name":    "Example",
			"email":          "bob@example.test",
			"email_verified": false,
			"locale":         "en-GB",
		},
	},
}

// Lifetimes used when the corresponding OPConfig field is zero.
const (
	defaultAccessTokenTTL  = 10 * time.Minute
	defaultRefreshTokenTTL = 24 * time.Hour
	defaultIDTokenTTL      = 10 * time.Minute
	defaultCodeTTL         = time.Minute
	defaultTicketTTL       = 5 * time.Minute
	defaultSessionTTL      = 12 * time.Hour
	defaultInteractionTTL  = 10 * time.Minute
)

// OPConfig configures the development OP. The zero value is usable.
type OPConfig struct {
	// Users are the accounts that can sign in. Nil means DemoUsers.
	Users []User

	// AccessTokenTTL is the lifetime of access tokens, protection tokens
	// (PATs) and RPTs (default 10m). RefreshTokenTTL is the lifetime of
	// refresh tokens and PCTs (default 24h). IDTokenTTL is the lifetime of
	// ID tokens (default 10m). CodeTTL is the lifetime of authorization
	// codes (default 1m). TicketTTL is the lifetime of UMA permission
	// tickets (default 5m).
	AccessTokenTTL, RefreshTokenTTL, IDTokenTTL, CodeTTL, TicketTTL time.Duration

	// RequirePKCE makes PKCE (S256) mandatory for every client. Public
	// clients (token_endpoint_auth_method "none") must always use PKCE.
	// A code_challenge, when sent, is always verified, and the "plain"
	// method is always rejected.
	RequirePKCE bool

	// UMAPolicy decides uma-ticket grant requests. Nil means DefaultPolicy.
	// It is called once per permission of the ticket, without the OP's
	// lock held; it must be safe for concurrent use.
	UMAPolicy func(PolicyRequest) PolicyDecision

	// Now is the clock (default time.Now). Tests move it to expire codes,
	// tokens and tickets.
	Now func() time.Time

	// Logger receives one line per request (endpoint, status, client_id,
	// error code). It is silent by default and never sees secrets.
	Logger *slog.Logger

	// Clients are pre-registered (static) clients, with any
	// token_endpoint_auth_method; NewOP refuses an invalid one
	// (ErrInvalidClient) with a message naming the field.
	Clients []StaticClient

	// DisableRegistration removes the registration endpoint (discovery
	// has no registration_endpoint, /register answers 404), as at OPs
	// that only know pre-registered clients.
	DisableRegistration bool

	// DisableEndSession removes the end_session endpoint (and
	// end_session_endpoint from discovery). DisableRevocation does the
	// same for the revocation endpoint.
	DisableEndSession, DisableRevocation bool

	// DisableAuthorizationResponseIss leaves the iss parameter (RFC 9207)
	// out of authorization responses and sets
	// authorization_response_iss_parameter_supported to false. By
	// default every authorization response, success or error, carries iss.
	DisableAuthorizationResponseIss bool

	// ClientAuthMethods lists the token_endpoint_auth_methods the OP
	// offers (token_endpoint_auth_methods_supported); nil means all of
	// client_secret_basic, client_secret_post, client_secret_jwt,
	// private_key_jwt and none. Registration with another method is
	// refused.
	ClientAuthMethods []string

	// LogoutHTTPClient sends back-channel logout requests (to the clients'
	// backchannel_logout_uri at end_session). Default: a client with a 5s
	// timeout. Tests set one that trusts their TLS test server.
	LogoutHTTPClient *http.Client

	// StrictClientAuthMethod makes client_secret_basic and
	// client_secret_post clients use exactly their registered method.
	// By default either is accepted from both (JWT and public clients
	// always use exactly theirs).
	StrictClientAuthMethod bool
}

// Endpoint names an endpoint of the OP, for Calls and SetFault.
type Endpoint string

// The endpoints of the OP. Paths are relative to the issuer.
const (
	EndpointDiscovery     Endpoint = "discovery"        // /.well-known/openid-configuration
	EndpointUMADiscovery  Endpoint = "uma_discovery"    // /.well-known/uma2-configuration
	EndpointJWKS          Endpoint = "jwks"             // /jwks
	EndpointRegistration  Endpoint = "registration"     // /register and /register/{client_id}
	EndpointAuthorize     Endpoint = "authorize"        // /authorize and the login form POST /login
	EndpointToken         Endpoint = "token"            // /token (all grants)
	EndpointUserinfo      Endpoint = "userinfo"         // /userinfo
	EndpointEndSession    Endpoint = "end_session"      // /end_session
	EndpointIntrospection Endpoint = "introspection"    // /introspect
	EndpointRevocation    Endpoint = "revocation"       // /revoke
	EndpointResourceSet   Endpoint = "resource_set"     // /uma/resource_set[/{id}]
	EndpointPermission    Endpoint = "permission"       // /uma/permission
	EndpointClaims        Endpoint = "claims_gathering" // /uma/claims_gathering
)

const (
	pathDiscovery     = "/.well-known/openid-configuration"
	pathUMADiscovery  = "/.well-known/uma2-configuration"
	pathJWKS          = "/jwks"
	pathRegistration  = "/register"
	pathAuthorize     = "/authorize"
	pathLogin         = "/login"
	pathToken         = "/token"
	pathUserinfo      = "/userinfo"
	pathEndSession    = "/end_session"
	pathIntrospection = "/introspect"
	pathRevocation    = "/revoke"
	pathResourceSet   = "/uma/resource_set"
	pathPermission    = "/uma/permission"
	pathClaims        = "/uma/claims_gathering"
)

// Fault is a failure injected into one endpoint with SetFault.
type Fault int

const (
	// FaultNone serves the endpoint normally.
	FaultNone Fault = iota
	// FaultGarbage answers 200 with a body that is not JSON (nor HTML).
	FaultGarbage
	// FaultSlow holds the request until the client gives up (its context
	// ends), the OP is closed, or a minute passes; then answers 503.
	FaultSlow
	// FaultUnknownKey makes the token endpoint sign ID tokens with a key
	// that is not in the JWKS (and whose kid is unknown). On other
	// endpoints it has no effect.
	FaultUnknownKey
	// FaultHTTP500 answers 500 with {"error":"server_error"}.
	FaultHTTP500
)

// slowFaultLimit bounds how long FaultSlow holds a request.
const slowFaultLimit = time.Minute

// maxBodyBytes bounds every request body the OP reads.
const maxBodyBytes = 64 << 10

// OP is an in-process OpenID Provider with a UMA 2.0 Authorization Server,
// meant for development and tests. It keeps all state in memory.
//
// OP is an http.Handler that serves every endpoint under the issuer's
// path. A request path that starts with the issuer's path has it removed
// first, so the handler works both mounted at that path and behind
// http.StripPrefix. All methods are safe for concurrent use.
type OP struct {
	issuer     string
	issuerURL  *url.URL
	basePath   string // issuer path without trailing slash, "" for none
	cfg        OPConfig
	users      []User
	log        *slog.Logger
	now        func() time.Time
	policy     func(PolicyRequest) PolicyDecision
	cookieSfx  string
	secureCook bool

	keys *keyring

	backChannelSent atomic.Int64

	mu     sync.Mutex
	st     *store
	calls  map[Endpoint]int
	faults map[Endpoint]Fault

	closeOnce sync.Once
	closed    chan struct{}
	srv       *http.Server
	srvDone   chan struct{}
}

// ErrInvalidIssuer is returned by NewOP for an issuer that is not an
// absolute http(s) URL without query or fragment.
var ErrInvalidIssuer = errors.New("devop: invalid issuer")

// NewOP returns an OP for issuer (for example "https://127.0.0.1:8443/op").
// The caller serves it (it is an http.Handler). A trailing slash of issuer
// is removed. Cookies are marked Secure when the issuer is https.
func NewOP(issuer string, cfg OPConfig) (*OP, error) {
	issuer = strings.TrimRight(issuer, "/")
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidIssuer, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return nil, fmt.Errorf("%w: %q must be an absolute http(s) URL without query, fragment or user info", ErrInvalidIssuer, issuer)
	}
	if cfg.AccessTokenTTL <= 0 {
		cfg.AccessTokenTTL = defaultAccessTokenTTL
	}
	if cfg.RefreshTokenTTL <= 0 {
		cfg.RefreshTokenTTL = defaultRefreshTokenTTL
	}
	if cfg.IDTokenTTL <= 0 {
		cfg.IDTokenTTL = defaultIDTokenTTL
	}
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = defaultCodeTTL
	}
	if cfg.TicketTTL <= 0 {
		cfg.TicketTTL = defaultTicketTTL
	}
	users := cfg.Users
	if users == nil {
		users = DemoUsers
	}
	seen := map[string]bool{}
	for _, usr := range users {
		if usr.Subject == "" || usr.Username == "" {
			return nil, errors.New("devop: every user needs a Subject and a Username")
		}
		if seen["u:"+usr.Username] || seen["s:"+usr.Subject] {
			return nil, fmt.Errorf("devop: duplicate user %q", usr.Username)
		}
		seen["u:"+usr.Username], seen["s:"+usr.Subject] = true, true
	}
	op := &OP{
		issuer:     issuer,
		issuerURL:  u,
		basePath:   strings.TrimRight(u.EscapedPath(), "/"),
		cfg:        cfg,
		users:      users,
		log:        cfg.Logger,
		now:        cfg.Now,
		policy:     cfg.UMAPolicy,
		cookieSfx:  shortHash(issuer),
		secureCook: u.Scheme == "https",
		st:         newStore(),
		calls:      map[Endpoint]int{},
		faults:     map[Endpoint]Fault{},
		closed:     make(chan struct{}),
	}
	if op.log == nil {
		op.log = slog.New(slog.DiscardHandler)
	}
	if op.now == nil {
		op.now = time.Now
	}
	if op.policy == nil {
		op.policy = DefaultPolicy
	}
	kr, err := newKeyring()
	if err != nil {
		return nil, err
	}
	op.keys = kr
	for _, m := range cfg.ClientAuthMethods {
		if !slices.Contains(allAuthMethods, m) {
			return nil, fmt.Errorf("devop: ClientAuthMethods: unknown method %q (known: %s)", m, strings.Join(allAuthMethods, ", "))
		}
	}
	for _, sc := range cfg.Clients {
		c, err := op.staticClient(sc)
		if err != nil {
			return nil, err
		}
		if op.st.clients[c.id] != nil {
			return nil, fmt.Errorf("%w: duplicate ClientID %q", ErrInvalidClient, c.id)
		}
		op.st.clients[c.id] = c
	}
	return op, nil
}

// StartOP starts an OP on a fresh loopback port (127.0.0.1:0) over plain
// HTTP; its issuer is "http://127.0.0.1:<port>". Stop it with Close.
func StartOP(cfg OPConfig) (*OP, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("devop: listen: %w", err)
	}
	op, err := NewOP("http://"+ln.Addr().String(), cfg)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	op.srv = &http.Server{
		Handler:           op,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
	}
	op.srvDone = make(chan struct{})
	go func() {
		defer close(op.srvDone)
		_ = op.srv.Serve(ln)
	}()
	return op, nil
}

// Issuer returns the issuer identifier, without a trailing slash.
func (op *OP) Issuer() string { return op.issuer }

// Close stops the listener started by StartOP (if any) and releases
// requests held by FaultSlow. It is idempotent.
func (op *OP) Close() {
	op.closeOnce.Do(func() {
		close(op.closed)
		if op.srv != nil {
			_ = op.srv.Close()
			<-op.srvDone
		}
	})
}

// Calls reports how many requests the endpoint has received since the OP
// was created (including failed and faulted ones).
func (op *OP) Calls(e Endpoint) int {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.calls[e]
}

// SetFault makes every later request to endpoint e fail with f, until it
// is set back to FaultNone.
func (op *OP) SetFault(e Endpoint, f Fault) {
	op.mu.Lock()
	defer op.mu.Unlock()
	if f == FaultNone {
		delete(op.faults, e)
		return
	}
	op.faults[e] = f
}

func (op *OP) fault(e Endpoint) Fault {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.faults[e]
}

// url returns the absolute URL of an OP path.
func (op *OP) url(p string) string { return op.issuer + p }

type route struct {
	ep      Endpoint
	handler func(w http.ResponseWriter, r *http.Request, rest string)
}

func (op *OP) route(p string) (route, string, bool) {
	switch p {
	case pathDiscovery:
		return route{EndpointDiscovery, op.handleDiscovery}, "", true
	case pathUMADiscovery:
		return route{EndpointUMADiscovery, op.handleUMADiscovery}, "", true
	case pathJWKS:
		return route{EndpointJWKS, op.handleJWKS}, "", true
	case pathRegistration:
		return route{EndpointRegistration, op.handleRegister}, "", true
	case pathAuthorize:
		return route{EndpointAuthorize, op.handleAuthorize}, "", true
	case pathLogin:
		return route{EndpointAuthorize, op.handleLogin}, "", true
	case pathToken:
		return route{EndpointToken, op.handleToken}, "", true
	case pathUserinfo:
		return route{EndpointUserinfo, op.handleUserinfo}, "", true
	case pathEndSession:
		return route{EndpointEndSession, op.handleEndSession}, "", true
	case pathIntrospection:
		return route{EndpointIntrospection, op.handleIntrospect}, "", true
	case pathRevocation:
		return route{EndpointRevocation, op.handleRevoke}, "", true
	case pathResourceSet:
		return route{EndpointResourceSet, op.handleResourceSet}, "", true
	case pathPermission:
		return route{EndpointPermission, op.handlePermission}, "", true
	case pathClaims:
		return route{EndpointClaims, op.handleClaims}, "", true
	}
	if rest, ok := strings.CutPrefix(p, pathRegistration+"/"); ok && rest != "" && !strings.Contains(rest, "/") {
		return route{EndpointRegistration, op.handleRegistrationClient}, rest, true
	}
	if rest, ok := strings.CutPrefix(p, pathResourceSet+"/"); ok && rest != "" && !strings.Contains(rest, "/") {
		return route{EndpointResourceSet, op.handleResourceSet}, rest, true
	}
	return route{}, "", false
}

// disabled reports whether an optional endpoint is switched off.
func (op *OP) disabled(e Endpoint) bool {
	switch e {
	case EndpointRegistration:
		return op.cfg.DisableRegistration
	case EndpointEndSession:
		return op.cfg.DisableEndSession
	case EndpointRevocation:
		return op.cfg.DisableRevocation
	}
	return false
}

// ServeHTTP implements http.Handler.
func (op *OP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if op.basePath != "" {
		if rest, ok := strings.CutPrefix(p, op.basePath); ok && (rest == "" || rest[0] == '/') {
			p = rest
		}
	}
	rt, rest, ok := op.route(p)
	if ok && op.disabled(rt.ep) {
		ok = false
	}
	if !ok {
		op.log.Debug("devop: not found", "path", p)
		writeOAuthError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	op.mu.Lock()
	op.calls[rt.ep]++
	f := op.faults[rt.ep]
	op.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	switch f {
	case FaultGarbage:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("\x00garbage<{not json"))
		return
	case FaultHTTP500:
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "injected fault")
		return
	case FaultSlow:
		t := time.NewTimer(slowFaultLimit)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-op.closed:
		case <-t.C:
		}
		writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "injected slow fault")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	rt.handler(sw, r, rest)
	op.log.Info("devop: request", "endpoint", string(rt.ep), "method", r.Method, "status", sw.status)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// userByName finds a user by username.
func (op *OP) userByName(name string) (User, bool) {
	for _, u := range op.users {
		if u.Username == name {
			return u, true
		}
	}
	return User{}, false
}

// userBySubject finds a user by subject.
func (op *OP) userBySubject(sub string) (User, bool) {
	for _, u := range op.users {
		if u.Subject == sub {
			return u, true
		}
	}
	return User{}, false
}

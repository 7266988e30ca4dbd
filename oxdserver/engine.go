// Package oxdserver is an oxd-compatible engine: it performs the OpenID
// Connect and UMA 2.0 work of oxd-server 3.1.x against any OP, in-process
// (as an oxdclient.Transport) or behind the socket protocol and the
// HTTPS-extension protocol.
//
// The engine answers every command of oxd-server 3.1.4 that a relying party
// uses (setup_client, register_site, update_site, remove_site, get_rp,
// get_authorization_url, get_tokens_by_code,
// get_access_token_by_refresh_token, get_user_info, get_logout_uri,
// get_client_token, introspect_access_token, introspect_rpt, uma_rs_protect,
// uma_rs_check_access, uma_rp_get_rpt, uma_rp_get_claims_gathering_url)
// with the answer shapes, error codes and descriptions of 3.1.4. Where 3.1.4
// is unsafe or buggy the engine deliberately differs:
//
//   - PKCE (S256) on every authorization request; the verifier is kept with
//     the state and sent at the token endpoint.
//   - state and nonce come from crypto/rand, are bound to the oxd_id that
//     asked for them, are single use, and expire (Config.StateTTL,
//     Config.NonceTTL). A state issued to another oxd_id is "not registered".
//   - id_token validation errors keep their specific codes
//     (invalid_id_token_bad_signature, …_expired, …_bad_issuer,
//     …_bad_audience, invalid_nonce, invalid_access_token_bad_hash) instead
//     of 3.1.4's collapsed invalid_id_token_unknown. Only RS256 and ES256
//     signatures are accepted; unknown key ids cause one JWKS refetch
//     (key rotation).
//   - An OP error on the code exchange is an answer, not the generic
//     internal error: invalid_grant gives bad_request "'code' is invalid."
//     (as oxd 4.x), other statuses http_status_<N>. The OP's body is never
//     passed on (3.1.4 quoted it): the description is the JSON object of
//     its OAuth "error" and "error_description" only (printable ASCII, at
//     most 64 and 256 characters), or "The OP answered HTTP <N>.". Network
//     failures and timeouts give one generic internal_error description,
//     and a failed discovery does not say why (no port or service probing
//     through the engine), only which URL it tried (from the caller's own
//     op_host); the generic internal error (after which 3.1.4 closes the
//     socket) is kept for unexpected failures only.
//   - invalid_oxd_id keeps its code, but its description says that a site
//     file holding the oxd_id is stale (delete it and restart; oxdclient's
//     EnsureSite registers again) instead of 3.1.4's "Please use
//     register_site command".
//   - OPs: https only (plain http with Config.InsecureAllowLoopbackHTTP or
//     InsecureAllowHTTP), optionally restricted to Config.OPHosts; every
//     endpoint of a discovery document, and the registration_client_uri,
//     must share the issuer's origin unless on the allow-list.
//   - Protection access tokens are checked by default on every listener
//     (3.1.4 ships with protection off), for every command that names an
//     existing oxd_id, get_rp included, also update_site of a setup site
//     (3.1.4 skipped it). See Config.InsecureNoProtection. A positive check
//     (one introspection at the OP) is reused for up to
//     Config.ProtectionCacheTTL (default one minute, never past the token's
//     exp), keyed by the SHA-256 of the token and the tenant that checked
//     it; concurrent commands with one new token share one introspection.
//     Trade-off: a protection token revoked at the OP keeps working on this
//     engine for up to that TTL (set it negative to introspect every
//     command, as oxd-server 3.1.4 does).
//   - setup_client and register_site arriving through a listener are
//     rate-limited (Config.RegistrationsPerMinute) and need the operator
//     token when one is configured (Config.OperatorToken) or the listener
//     requires it (RequireOperatorToken).
//   - update_site and register_site map grant type short names
//     (uma_ticket) to their registered URIs, drop unknown names with a
//     warning, and keep the grants the site needs (update_site with
//     grant_types dropped refresh_token in 3.1.4).
//   - Pending states and nonces are bounded in every store
//     (DefaultMaxValues, DefaultMaxValuesPerGroup), oldest evicted first.
//   - Answers keep '&', '<' and '>' raw (not Go's HTML-safe escapes).
//   - custom_parameters of get_authorization_url are appended as ordinary,
//     URL-encoded query parameters (as oxd 4.x "params"), not packed into
//     3.1.4's custom_response_headers; they cannot replace a parameter the
//     engine sets (response_type, client_id, redirect_uri, scope, state,
//     nonce, code_challenge, code_challenge_method, acr_values, prompt, hd).
//     Every value of every URL the engine builds is URL-encoded (3.1.4 left
//     client_id, redirect_uri, prompt, hd, state and the claims-gathering
//     values raw).
//   - get_logout_uri adds id_token_hint when given (3.1.4 never does), and
//     accepts only the site's registered post_logout_redirect_uri.
//   - update_site keeps the stored grant types when none are given (3.1.4
//     stored null and failed on the next update).
//   - uma_rp_get_rpt never returns a cached RPT: every call goes to the AS,
//     so one user's RPT is never handed to another. The scope is form-encoded
//     once.
//   - uma_rs_check_access answers "denied" only with a ticket; a failed
//     ticket registration is an error answer (3.1.4 crashed).
//   - get_client_token sends exactly the requested scopes (3.1.4 always
//     added openid); get_access_token_by_refresh_token adds openid only when
//     other scopes are requested and the OP lists openid as supported, and
//     sends no scope at all (keeping the granted one) when none is asked.
//   - Client authentication (internal/clientauth) on every call that
//     authenticates the client (code exchange, refresh, protection tokens,
//     the UMA token endpoint, introspection, revocation):
//     client_secret_basic, client_secret_post, client_secret_jwt,
//     private_key_jwt (keys generated and held in the site, public JWKS
//     from Engine.ClientJWKS, the get_client_jwks extension command, the
//     HTTPS extension's unauthenticated GET ClientJWKSPathPrefix+oxd_id,
//     or registered as jwks; update_site rotates them) and none (public client; PKCE S256 is always sent). Client
//     assertions have a fresh jti, a 60 s exp and aud = the token endpoint,
//     and follow the wall clock. get_client_token accepts
//     authentication_method basic, client_secret_basic, client_secret_post
//     and client_secret_jwt; private_key_jwt answers invalid_algorithm
//     there (the engine holds keys only for its sites' clients).
//   - revoke_token (extension, not in 3.1.4; HTTPS path /revoke-token):
//     RFC 7009 revocation of a token of the site's client, protected like
//     the other site commands.
//   - get_client_jwks (extension, not in 3.1.4; HTTPS path
//     /get-client-jwks): the public JWKS of a private_key_jwt site,
//     protected like the other site commands. update_site with only
//     oxd_id rotates the keys of a pre-registered private_key_jwt site
//     (published at once, signing after keyRotationLead); any other
//     update of a pre-registered site is invalid_registration_client_url.
//   - Tokens are never stored: get_rp shows null for id_token, access_token,
//     pat and rpt fields. get_rp returns the stored client secret and
//     registration access token only to the tenant's token holder when
//     protection is on; {"list":true} then needs a protection token and
//     lists the caller's tenant only, in pages of at most MaxGetRPList
//     ("offset", "limit"); the token is introspected only at the OP named
//     by "op_host" (required when the engine serves several OPs), never at
//     another tenant's OP.
//   - Introspection (introspect_access_token, introspect_rpt, protection
//     tokens, check access) authenticates with the site's method when the
//     OP lists it in introspection_endpoint_auth_methods_supported (or
//     lists none), else with the site's PAT as a bearer token, as Gluu's
//     oxAuth expects; a public client (none) gets invalid_request there.
//   - register_site and setup_client honour client_token_endpoint_auth_method
//     (checked against the OP's token_endpoint_auth_methods_supported) and
//     client_token_endpoint_auth_signing_alg; without a method a dynamic
//     registration takes the strongest one the OP lists (private_key_jwt >
//     client_secret_jwt > client_secret_basic > client_secret_post), except
//     setup_client's protection client, which keeps a secret
//     (client_secret_basic, or client_secret_post) for get_client_token.
//     A client_id means a pre-registered client (no dynamic registration):
//     without client_secret it is accepted for none and private_key_jwt and
//     refused (invalid_request naming client_secret) otherwise. At an OP
//     without a registration endpoint setup_client takes pre-registered
//     clients: client_id/client_secret/client_token_endpoint_auth_method
//     for the site and the extension parameters setup_client_id,
//     setup_client_secret, setup_client_token_endpoint_auth_method for the
//     protection client; with only the former, one client plays both roles
//     (it needs the client_credentials grant and the oxd and
//     uma_protection scopes at the OP). Clients are registered
//     with the refresh_token grant (and the uma-ticket grant when the OP
//     lists it); client_credentials is added for sites with the
//     uma_protection or oxd scope. setup_client's regular site gets
//     uma_protection and client_credentials (for uma_rs_protect) but not
//     the oxd scope, which only the setup client has.
//   - update_site sends the site's complete metadata (an RFC 7592 PUT
//     replaces the registration) and stores a rotated registration token.
//   - Blank tickets of uma_rp_get_rpt answer invalid_ticket_parameter (as
//     oxd 4.x); uma_rs_protect also refuses empty paths, conditions without
//     methods and conditions without scopes (invalid_uma_request).
//   - Legacy and test-only commands (validate, id_token_status,
//     access_token_status, get_authorization_code, authorization_code_flow,
//     implicit_flow, license_status) answer unsupported_operation.
//
// # Telemetry
//
// With Config.TracerProvider and Config.MeterProvider (nil: the global
// OpenTelemetry providers, no-ops until the application installs an SDK),
// every command has a span, "oxd-server <command>" (kind server behind a
// listener; oxd.command, oxd.listener, oxd.result), and every HTTP call to
// the OP/AS a client span below it ("POST token", "GET jwks", …;
// http.request.method, http.response.status_code or error.type,
// server.address, server.port, oxd.op.endpoint). The caller's trace
// context is read from the W3C traceparent and tracestate headers of the
// HTTPS extension, and from the "traceparent" and "tracestate" keys inside
// the params of a socket command (oxd-server 3.1.4 ignores unknown
// parameter keys, while an unknown top-level key makes it close the
// connection); malformed or oversized values, params keys in another case
// or repeated, and more than one traceparent header are ignored and never
// logged. The caller chooses the trace ID and the sampled flag, as W3C
// Trace Context allows: the TracerProvider's sampler decides whether to
// follow the flag (the SDK's default, ParentBased(AlwaysSample), does, so
// a caller can have its commands' spans recorded or not, and its
// tracestate is passed on to the OP). Callers of a listener are not
// authenticated when the span starts; an operator who does not want them
// to steer sampling configures the sampler's remote-parent options
// (sdktrace.WithRemoteParentSampled, WithRemoteParentNotSampled). Metrics
// and logs count every command whatever the caller's flags.
// Every call to the OP/AS carries a traceparent header. The metrics are
// oxd.server.command.duration, oxd.server.op.request.duration,
// oxd.server.jwks.refreshes, oxd.server.protection.checks,
// oxd.server.sites and oxd.server.pending_states (stores implementing
// StoreCounter) and oxd.server.connections (SocketServer). Every attribute
// comes from a small fixed set ("unknown" for a command the engine does not
// serve); none holds a parameter, token, secret, code, state, nonce, RPT,
// client assertion or URL path or query.
package oxdserver

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"

	"github.com/oxdgo/oxd/oxdclient"
)

// Default values of Config.
const (
	DefaultStateTTL     = 5 * time.Minute
	DefaultNonceTTL     = 5 * time.Minute
	DefaultDiscoveryTTL = time.Hour
	DefaultJWKSTTL      = time.Hour
	DefaultOPTimeout    = 10 * time.Second
	DefaultClockSkew    = time.Minute
)

// Config configures an [Engine].
type Config struct {
	// Store keeps sites, states and nonces. Nil means a new MemoryStore
	// (using the clock Now). The engine closes it in Close.
	Store Store
	// HTTPClient is used for every call to the OP/AS. Nil means a client
	// with TLS verification on and a timeout of OPTimeout. Plain http
	// issuers (loopback development OPs) are allowed.
	HTTPClient *http.Client
	// StateTTL and NonceTTL bound how long a login may take (default 5m).
	// StateTTL also bounds claims-gathering states.
	StateTTL, NonceTTL time.Duration
	// DiscoveryTTL is how long discovery documents are cached (default 1h).
	// A failed refetch keeps using the stale document.
	DiscoveryTTL time.Duration
	// JWKSTTL is how long an OP's JWKS is cached (default 1h). An unknown
	// key id always triggers one refetch.
	JWKSTTL time.Duration
	// OPTimeout bounds each request to the OP (default 10s).
	OPTimeout time.Duration
	// ClockSkew is the tolerance for id_token exp and iat (default 1m).
	ClockSkew time.Duration
	// Logger is silent by default and never receives secrets: one debug
	// line per command (name, duration, outcome code) and warnings for
	// unexpected failures.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// InsecureNoProtection switches protection access tokens off for every
	// listener (SocketServer, the HTTPS-extension handler, and callers of
	// Execute). By default (false) protection is on: every command that
	// names an existing oxd_id, register_site and get_rp need the
	// protection token of that site's tenant (its setup client, obtained
	// with get_client_token and scope "oxd"), see reference §4. Switching
	// it off is oxd-server 3.1.4's shipped default and lets anyone who
	// reaches a listener read every site's client secret (get_rp), use and
	// change every site and remove it: only for a trusted single-tenant
	// setup on loopback.
	//
	// The in-process transport (Do, as used by oxdclient.New(engine, …)) is
	// the application's own code and inside the trust boundary: it is never
	// checked (code in the process could read the Store directly).
	// ProtectedTransport gives an in-process transport that is checked like
	// a listener.
	InsecureNoProtection bool
	// OPHosts is the allow-list of OPs (host or host:port, or a URL whose
	// host is taken). Empty: any https OP. When set, op_host of every
	// command must name one of them, and every back-channel endpoint too.
	// Discovery endpoints must share the issuer's origin unless their host
	// is on the list.
	OPHosts []string
	// ProtectionCacheTTL is how long a positive check of a protection
	// access token is reused without asking the OP again (default
	// DefaultProtectionCacheTTL, one minute; negative: never, every
	// protected command introspects its token). An answer is never kept
	// past the token's exp less 5 s. The cache holds the SHA-256 of each
	// token bound to the setup site (tenant), its client and its OP that
	// checked it, never the token; failed checks are not cached. The
	// trade-off: a protection token revoked at the OP keeps working for up
	// to this long on this engine.
	ProtectionCacheTTL time.Duration
	// ProtectionCacheSize bounds the cached protection token checks
	// (default DefaultProtectionCacheSize, 10,000, least recently used
	// evicted first; negative: no cache).
	ProtectionCacheSize int
	// InsecureAllowLoopbackHTTP lets the engine talk plain http to OPs on a
	// loopback address (127.0.0.0/8, ::1, localhost): development and test
	// OPs such as oxdtest's. Off by default: plain http is refused.
	InsecureAllowLoopbackHTTP bool
	// OperatorToken, when set, must be given as the "operator_token"
	// parameter of setup_client and register_site arriving through a
	// listener (they create tenants and OP clients and are never protected
	// by a tenant's token). A listener with RequireOperatorToken refuses
	// them while OperatorToken is empty.
	OperatorToken string
	// RegistrationsPerMinute bounds setup_client and register_site
	// arriving through listeners, for the whole engine (default 30, with
	// bursts of as many; negative: no bound).
	RegistrationsPerMinute int
	// InsecureAllowHTTP lets the engine talk plain http to any OP (implies
	// InsecureAllowLoopbackHTTP). Client secrets and tokens then cross the
	// network in clear text.
	InsecureAllowHTTP bool
	// TracerProvider receives the engine's spans: one per command (kind
	// server behind a listener, a child of the caller's trace context when
	// the request carries one) and one per HTTP call to the OP/AS, whose
	// trace context is sent to the OP as a W3C traceparent header. Nil: the
	// global provider (a no-op until the application installs one). Spans
	// hold command names, endpoint kinds, status codes and oxd error codes,
	// never a parameter, token, secret, code, state, nonce or URL query.
	TracerProvider trace.TracerProvider
	// MeterProvider receives the engine's metrics (oxd.server.*: command
	// and OP call latency, JWKS refreshes, protection checks, sites,
	// pending states, open connections). Nil: the global provider (a no-op
	// until the application installs one). Every label comes from a small
	// fixed set.
	MeterProvider metric.MeterProvider
}

// Request is one command for [Engine.Execute].
type Request struct {
	Command string
	// Params is the JSON object of the command's parameters.
	Params json.RawMessage
	// ProtectionToken, when non-empty, replaces protection_access_token in
	// Params (the HTTPS extension takes it from the Authorization header).
	ProtectionToken string

	// inProcess marks a call of the trusted in-process transport (Do):
	// protection tokens are not checked.
	inProcess bool
	// requireOperator: the listener requires the operator token for
	// setup_client and register_site even when none is configured.
	requireOperator bool
	// listener is the oxd.listener of the command's telemetry: "socket",
	// "https" or "inprocess" (also for callers of Execute).
	listener string
}

// DefaultRegistrationsPerMinute is the default of
// Config.RegistrationsPerMinute.
const DefaultRegistrationsPerMinute = 30

// Engine performs oxd commands. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	store Store
	http  *http.Client
	// ownTransport is the transport the engine made (HTTPClient nil).
	ownTransport *http.Transport
	log          *slog.Logger
	now          func() time.Time
	flight       singleflight.Group
	allowed      []allowedHost // Config.OPHosts

	regMu     sync.Mutex
	regTokens float64 // registration rate limit bucket
	regLast   time.Time

	prot protCache // positive protection token checks
	// disc holds discovery documents and JWKS by URL, at most
	// discCacheSize: a caller without credentials chooses op_host
	// (get_client_token, setup_client).
	disc ttlCache[string, *cached]
	// protChecks bounds the protection token checks at the OP.
	protChecks *gate
	protShares shares // of protChecks, by setup site
	// clientKeys caches the answers of the public client JWKS route.
	clientKeys *clientJWKSCache

	mu    sync.Mutex
	pats  map[string]*patEntry
	locks map[string]*siteLock

	tel *engineTelemetry
}

type cached struct {
	v       any
	fetched time.Time
}

type siteLock struct {
	mu   sync.Mutex
	refs int
}

// New returns an engine.
func New(cfg Config) (*Engine, error) {
	if cfg.StateTTL < 0 || cfg.NonceTTL < 0 || cfg.DiscoveryTTL < 0 || cfg.JWKSTTL < 0 || cfg.OPTimeout < 0 || cfg.ClockSkew < 0 {
		return nil, errors.New("oxdserver: negative duration in Config")
	}
	allowed, err := parseOPHosts(cfg.OPHosts)
	if err != nil {
		return nil, err
	}
	if cfg.StateTTL == 0 {
		cfg.StateTTL = DefaultStateTTL
	}
	if cfg.NonceTTL == 0 {
		cfg.NonceTTL = DefaultNonceTTL
	}
	if cfg.DiscoveryTTL == 0 {
		cfg.DiscoveryTTL = DefaultDiscoveryTTL
	}
	if cfg.JWKSTTL == 0 {
		cfg.JWKSTTL = DefaultJWKSTTL
	}
	if cfg.OPTimeout == 0 {
		cfg.OPTimeout = DefaultOPTimeout
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	e := &Engine{
		cfg:        cfg,
		store:      cfg.Store,
		http:       cfg.HTTPClient,
		log:        cfg.Logger,
		now:        cfg.Now,
		allowed:    allowed,
		pats:       map[string]*patEntry{},
		locks:      map[string]*siteLock{},
		clientKeys: newClientJWKSCache(),
		protChecks: newGate(protectionChecksInFlight, protectionChecksWaiting),
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.store == nil {
		m := NewMemoryStore()
		m.now = e.now // the engine's clock governs state expiry
		e.store = m
	}
	if e.http == nil {
		// An own transport (TLS verification on), so that Close can drop
		// its idle connections without touching http.DefaultTransport.
		e.ownTransport = http.DefaultTransport.(*http.Transport).Clone()
		// Common OP servers close idle keep-alive connections after a
		// few seconds (Node's default is 5 s); a token POST sent on a
		// connection the OP is closing fails and is not retried (POST
		// is not replayable). Dropping idle connections sooner avoids
		// that race at the cost of an occasional new handshake.
		e.ownTransport.IdleConnTimeout = 4 * time.Second
		// Keep as many idle connections to an OP as logins in flight
		// use (the default of 2 closed most of them after each token
		// or userinfo request under concurrent logins, and the next
		// request dialled again).
		e.ownTransport.MaxIdleConnsPerHost = opIdleConnsPerHost
		e.http = &http.Client{Timeout: cfg.OPTimeout, Transport: e.ownTransport, CheckRedirect: noRedirects}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.tel = newEngineTelemetry(e)
	return e, nil
}

// opIdleConnsPerHost is how many idle connections the engine's own
// transport keeps to one OP host.
const opIdleConnsPerHost = 64

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

// Close releases the engine's resources, including its store. The
// engine must not be used afterwards.
func (e *Engine) Close() error {
	if e.ownTransport != nil {
		e.ownTransport.CloseIdleConnections()
	}
	e.tel.close()
	return e.store.Close()
}

// call is the state of one command execution.
type call struct {
	command string
	raw     json.RawMessage
	protect bool
	token   string // protection token (header wins over params)
	site    *Site  // for commands with an oxd_id
}

type handler struct {
	// site: the command takes an oxd_id (blank → bad_request, unknown →
	// invalid_oxd_id). protected: subject to protection-token checks.
	site, protected bool
	exec            func(e *Engine, ctx context.Context, c *call) (any, error)
}

// commonParams are read from every command's parameters.
type commonParams struct {
	OxdID string           `json:"oxd_id"`
	PAT   oxdclient.Secret `json:"protection_access_token"`
}

// cmd builds a handler that decodes the parameters into P, runs the common
// checks (oxd_id, protection) in the order of oxd-server 3.1.4, then run.
func cmd[P any](site, protected bool, run func(*Engine, context.Context, *call, *P) (any, error)) handler {
	h := handler{site: site, protected: protected}
	common := commonFieldsOf[P]()
	h.exec = func(e *Engine, ctx context.Context, c *call) (any, error) {
		p := new(P)
		if err := json.Unmarshal(c.raw, p); err != nil {
			return nil, errNoParams()
		}
		var cp commonParams
		if common != nil {
			cp = common(p)
		} else if err := json.Unmarshal(c.raw, &cp); err != nil {
			return nil, errNoParams()
		}
		if c.token == "" {
			c.token = strings.TrimSpace(cp.PAT.Reveal())
		}
		if site {
			if strings.TrimSpace(cp.OxdID) == "" {
				return nil, badRequest(descNoOxdID)
			}
			s, err := e.siteByCallerID(ctx, cp.OxdID)
			if err != nil {
				return nil, err
			}
			c.site = s
			if protected && c.protect {
				if err := e.checkProtection(ctx, c); err != nil {
					return nil, err
				}
			}
		}
		return run(e, ctx, c, p)
	}
	return h
}

// commonFieldsOf returns a function that reads the common parameters from
// a decoded P, when P holds them with the types of commonParams (then
// decoding the parameters into P fails exactly when decoding them into
// commonParams would, and yields the same values); nil otherwise, and the
// parameters are decoded a second time into commonParams.
func commonFieldsOf[P any]() func(*P) commonParams {
	t := reflect.TypeFor[P]()
	if t.Kind() != reflect.Struct {
		return nil
	}
	idx := func(name string, typ reflect.Type) []int {
		var found []int
		for _, f := range reflect.VisibleFields(t) {
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); strings.EqualFold(tag, name) {
				if found != nil || f.Type != typ || !f.IsExported() {
					return nil
				}
				found = f.Index
			}
		}
		return found
	}
	idIdx := idx("oxd_id", reflect.TypeFor[string]())
	patIdx := idx("protection_access_token", reflect.TypeFor[oxdclient.Secret]())
	if idIdx == nil || patIdx == nil {
		return nil
	}
	get := func(p *P) commonParams {
		// A field behind a nil embedded pointer was absent from the JSON.
		var cp commonParams
		v := reflect.ValueOf(p).Elem()
		if id, err := v.FieldByIndexErr(idIdx); err == nil {
			cp.OxdID = id.String()
		}
		if pat, err := v.FieldByIndexErr(patIdx); err == nil {
			cp.PAT = oxdclient.Secret(pat.String())
		}
		return cp
	}
	// Check on a sample that encoding/json fills the fields found (no name
	// conflict hides them).
	const probe = `{"oxd_id":"probe-id","protection_access_token":"probe-token"}`
	var (
		p  P
		cp commonParams
	)
	if json.Unmarshal([]byte(probe), &p) != nil || json.Unmarshal([]byte(probe), &cp) != nil || get(&p) != cp {
		return nil
	}
	return get
}

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		oxdclient.CmdSetupClient:                  cmd(false, false, (*Engine).setupClient),
		oxdclient.CmdRegisterSite:                 cmd(false, false, (*Engine).registerSite), // protection handled inside
		oxdclient.CmdUpdateSite:                   cmd(true, true, (*Engine).updateSite),
		oxdclient.CmdRemoveSite:                   cmd(true, true, (*Engine).removeSite),
		oxdclient.CmdGetRP:                        cmd(false, false, (*Engine).getRP), // protection handled inside
		oxdclient.CmdGetAuthorizationURL:          cmd(true, true, (*Engine).getAuthorizationURL),
		oxdclient.CmdGetTokensByCode:              cmd(true, true, (*Engine).getTokensByCode),
		oxdclient.CmdGetAccessTokenByRefreshToken: cmd(true, true, (*Engine).refreshToken),
		oxdclient.CmdGetUserInfo:                  cmd(true, true, (*Engine).getUserInfo),
		oxdclient.CmdGetLogoutURI:                 cmd(true, true, (*Engine).getLogoutURI),
		oxdclient.CmdGetClientToken:               cmd(false, false, (*Engine).getClientToken),
		oxdclient.CmdIntrospectAccessToken:        cmd(true, true, (*Engine).introspectAccessToken),
		oxdclient.CmdIntrospectRPT:                cmd(true, true, (*Engine).introspectRPT),
		oxdclient.CmdUMARSProtect:                 cmd(true, true, (*Engine).umaRSProtect),
		oxdclient.CmdUMARSCheckAccess:             cmd(true, true, (*Engine).umaRSCheckAccess),
		oxdclient.CmdUMARPGetRPT:                  cmd(true, true, (*Engine).umaRPGetRPT),
		oxdclient.CmdUMARPGetClaimsGatheringURL:   cmd(true, true, (*Engine).umaClaimsGatheringURL),
		oxdclient.CmdRevokeToken:                  cmd(true, true, (*Engine).revokeToken),   // extension
		oxdclient.CmdGetClientJWKS:                cmd(true, true, (*Engine).getClientJWKS), // extension
	}
}

// Commands returns the names of the commands the engine serves.
func Commands() []string {
	out := make([]string, 0, len(handlers))
	for k := range handlers {
		out = append(out, k)
	}
	return out
}

// Execute runs one command and returns the answer's data (a value that
// encodes to the JSON object of the 3.1.4 answer, every field present, null
// when unset). An oxd error answer is returned as a fresh
// *oxdclient.Error: unknown command → unsupported_operation; missing or
// ill-typed params → internal_error "Command parameters are not specified
// or otherwise malformed."; an unexpected failure → the generic
// internal_error (see oxdclient.IsGenericInternalError). Execute never returns
// another error type.
//
// Every command has a span (Config.TracerProvider) and its duration is
// recorded (Config.MeterProvider) with the command name ("unknown" for a
// name the engine does not serve), the listener and the result ("ok" or
// the oxd error code).
func (e *Engine) Execute(ctx context.Context, req Request) (any, error) {
	start := time.Now()
	name := strings.ToLower(strings.TrimSpace(req.Command))
	label := commandLabel(name)
	listener := req.listener
	if listener == "" {
		listener = listenerInProcess
	}
	ctx, span := e.tel.startCommand(ctx, label, listener)
	out, oe := e.execute(ctx, name, req)
	e.tel.endCommand(ctx, span, label, listener, oe, start)
	if oe != nil {
		return nil, oe
	}
	return out, nil
}

func (e *Engine) execute(ctx context.Context, name string, req Request) (any, *oxdclient.Error) {
	start := e.now()
	h, ok := handlers[name]
	if !ok {
		e.log.LogAttrs(ctx, slog.LevelDebug, "oxd command", slog.String("command", feLogName(name)),
			slog.String("status", "error"), slog.String("code", oxdclient.CodeUnsupportedOperation))
		return nil, oxdErr(oxdclient.CodeUnsupportedOperation, descUnsupported)
	}
	raw := bytes.TrimSpace(req.Params)
	if len(raw) == 0 || raw[0] != '{' {
		e.logDone(ctx, name, start, errNoParams(), nil)
		return nil, errNoParams()
	}
	if !req.inProcess && (name == oxdclient.CmdSetupClient || name == oxdclient.CmdRegisterSite) {
		if oe := e.admitRegistration(raw, req.requireOperator); oe != nil {
			e.logDone(ctx, name, start, oe, nil)
			return nil, oe
		}
	}
	c := &call{command: name, raw: raw, protect: e.Protected() && !req.inProcess, token: strings.TrimSpace(req.ProtectionToken)}
	out, err := e.safeExec(ctx, h, c)
	if err != nil {
		oe, generic := toOxd(err)
		var cause error
		if generic {
			cause = err
		}
		e.logDone(ctx, name, start, oe, cause)
		return nil, oe
	}
	e.logDone(ctx, name, start, nil, nil)
	return out, nil
}

// safeExec runs the handler and turns a panic into the generic internal
// error (a bug must not take the listener down).
func (e *Engine) safeExec(ctx context.Context, h handler, c *call) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("panic in %s: %v", c.command, r)
		}
	}()
	return h.exec(e, ctx, c)
}

func (e *Engine) logDone(ctx context.Context, command string, start time.Time, oe *oxdclient.Error, cause error) {
	attrs := []slog.Attr{slog.String("command", command), slog.Duration("duration", e.now().Sub(start))}
	if oe == nil {
		e.log.LogAttrs(ctx, slog.LevelDebug, "oxd command", append(attrs, slog.String("status", "ok"))...)
		return
	}
	attrs = append(attrs, slog.String("status", "error"), slog.String("code", oe.Code))
	if cause != nil {
		// Causes are built by this package and never quote secrets.
		e.log.LogAttrs(ctx, slog.LevelWarn, "oxd command failed unexpectedly", append(attrs, slog.String("cause", cause.Error()))...)
		return
	}
	e.log.LogAttrs(ctx, slog.LevelDebug, "oxd command", attrs...)
}

// Protected reports whether the engine checks protection access tokens on
// its listeners (Config.InsecureNoProtection is false).
func (e *Engine) Protected() bool { return !e.cfg.InsecureNoProtection }

// Do implements oxdclient.Transport in-process (no network hop): params are
// encoded to JSON and the answer decoded into result, as over a socket.
// The in-process transport is trusted: protection tokens are not checked
// (see Config.InsecureNoProtection).
func (e *Engine) Do(ctx context.Context, command string, params, result any) error {
	return e.do(ctx, command, params, result, true)
}

// ProtectedTransport returns an in-process oxdclient.Transport that is
// checked like a listener: with protection on (the default) every command
// needs its tenant's protection token. It serves tests of protected
// clients and applications that hand the engine to less trusted code.
func (e *Engine) ProtectedTransport() oxdclient.Transport { return protectedTransport{e} }

type protectedTransport struct{ e *Engine }

func (p protectedTransport) Do(ctx context.Context, command string, params, result any) error {
	return p.e.do(ctx, command, params, result, false)
}

func (e *Engine) do(ctx context.Context, command string, params, result any, inProcess bool) error {
	raw, err := json.Marshal(params)
	if err != nil {
		return &oxdclient.TransportError{Command: command, Kind: oxdclient.ErrProtocol, Err: errors.New("params do not encode to JSON")}
	}
	if string(raw) == "null" {
		raw = nil
	}
	data, err := e.Execute(ctx, Request{Command: command, Params: raw, inProcess: inProcess})
	if err != nil {
		return err
	}
	if result == nil || answerInto(data, result) {
		return nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return &oxdclient.TransportError{Command: command, Kind: oxdclient.ErrProtocol, Err: errors.New("answer does not encode to JSON"), Sent: true}
	}
	if err := json.Unmarshal(b, result); err != nil {
		return &oxdclient.TransportError{Command: command, Kind: oxdclient.ErrProtocol, Err: errors.New("answer does not match the command's result type"), Sent: true}
	}
	return nil
}

// lockSite serialises read-modify-write of one site within this engine.
func (e *Engine) lockSite(oxdID string) func() {
	e.mu.Lock()
	l := e.locks[oxdID]
	if l == nil {
		l = &siteLock{}
		e.locks[oxdID] = l
	}
	l.refs++
	e.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		e.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(e.locks, oxdID)
		}
		e.mu.Unlock()
	}
}

// noRedirects makes the engine's own HTTP client return a redirect as the
// answer instead of following it: the OP's back-channel endpoints never
// redirect, and following one would resend client secrets, codes and
// tokens to another URL (possibly over plain HTTP).
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Error codes of the registration gate (not in 3.1.4).
const (
	CodeInvalidOperatorToken = "invalid_operator_token"
	CodeTooManyRegistrations = "too_many_registrations"
)

// admitRegistration checks the operator token and the rate limit of
// setup_client and register_site from a listener.
func (e *Engine) admitRegistration(raw json.RawMessage, require bool) *oxdclient.Error {
	if e.cfg.OperatorToken != "" || require {
		var p struct {
			Token string `json:"operator_token"`
		}
		_ = json.Unmarshal(raw, &p)
		if e.cfg.OperatorToken == "" || subtle.ConstantTimeCompare([]byte(p.Token), []byte(e.cfg.OperatorToken)) != 1 {
			return oxdErr(CodeInvalidOperatorToken, "setup_client and register_site need the server's operator token (parameter operator_token) on this listener.")
		}
	}
	rate := e.cfg.RegistrationsPerMinute
	if rate == 0 {
		rate = DefaultRegistrationsPerMinute
	}
	if rate < 0 {
		return nil
	}
	now := e.now()
	e.regMu.Lock()
	defer e.regMu.Unlock()
	if e.regLast.IsZero() {
		e.regTokens = float64(rate)
	} else {
		e.regTokens = min(float64(rate), e.regTokens+now.Sub(e.regLast).Minutes()*float64(rate))
	}
	e.regLast = now
	if e.regTokens < 1 {
		return oxdErr(CodeTooManyRegistrations, "Too many setup_client/register_site commands; retry in a minute.")
	}
	e.regTokens--
	return nil
}

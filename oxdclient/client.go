package oxdclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Transport carries one oxd command and its answer.
//
// Do marshals params (a params struct of this package, or any value that
// encodes to a JSON object) as the command's parameters, sends it, and on
// status "ok" decodes the data into result (which may be nil). On status
// "error" it returns an [*Error]; on any other failure a [*TransportError].
// Implementations must be safe for concurrent use.
//
// This package provides the socket transport of oxd-server 3.1.x
// ([NewSocket]) and the oxd-https-extension transport ([NewHTTPS]); the
// engine in package oxdserver is a Transport too (no network hop).
type Transport interface {
	Do(ctx context.Context, command string, params, result any) error
}

// Config configures a [Client]. The zero value is valid: no logging, no
// protection tokens.
type Config struct {
	// Logger receives one debug line per command (name, duration, outcome
	// code) and warnings about protection-token refreshes. It never receives
	// parameters, answers, tokens or secrets. Nil disables logging.
	Logger *slog.Logger

	// Protection, when set, makes the client obtain protection access tokens
	// with get_client_token using these setup-client credentials and attach
	// them to every PAT-protected command that has none. See
	// [ProtectionCredentials].
	//
	// Leave it nil for a site that [EnsureSite] creates or reads: EnsureSite
	// installs the site's setup-client credentials itself, also on the first
	// run, when no site (and no credentials) exist yet. Set it only for
	// credentials that exist before the site, e.g. an operator-provided
	// setup client for [EnsureRegisteredSite] (register_site on a protected
	// oxd needs a token).
	Protection *ProtectionCredentials

	// TokenSource overrides Protection with a custom source of protection
	// access tokens.
	TokenSource TokenSource

	// TracerProvider receives one client span per command (see the
	// package documentation, "Telemetry"). Default nil: the global
	// provider (otel.GetTracerProvider), which records nothing until the
	// application installs one; while none is installed no span is
	// started at all. Spans never carry parameters, answers or secrets.
	TracerProvider trace.TracerProvider

	// MeterProvider receives the command latency histogram and, for a
	// [Socket] transport, the pool metrics. Default nil: the global
	// provider (otel.GetMeterProvider), a no-op until the application
	// installs one.
	MeterProvider metric.MeterProvider
}

// Client calls oxd commands over a [Transport]. It is safe for concurrent
// use. Every method takes a context whose deadline and cancellation bound
// the whole call, including any protection-token refresh and retry.
type Client struct {
	t      Transport
	logger *slog.Logger
	ts     atomic.Pointer[tokenSourceBox]
	tel    *clientTelemetry
}

type tokenSourceBox struct {
	ts TokenSource
	// clientID is the setup client of a source made from
	// ProtectionCredentials, empty for a custom TokenSource.
	clientID string
}

// New returns a client that sends commands over t.
func New(t Transport, cfg Config) *Client {
	c := &Client{t: t, logger: cfg.Logger, tel: newClientTelemetry(t, cfg)}
	switch {
	case cfg.TokenSource != nil:
		c.SetTokenSource(cfg.TokenSource)
	case cfg.Protection != nil:
		c.SetProtection(cfg.Protection)
	}
	return c
}

// Transport returns the transport the client uses.
func (c *Client) Transport() Transport { return c.t }

// SetProtection installs (or, with nil, removes) protection credentials. It
// is safe to call while other goroutines use the client, e.g. after a
// settings page has run setup_client. [EnsureSite] calls it for the site it
// returns; call it yourself only for a site set up otherwise.
func (c *Client) SetProtection(p *ProtectionCredentials) {
	if p == nil {
		c.ts.Store(nil)
		return
	}
	c.ts.Store(&tokenSourceBox{ts: newProtectionTokens(c, *p), clientID: p.ClientID})
}

// useSiteProtection installs the credentials of s unless the client has a
// custom token source or already uses the same setup client (whose
// configured Scope and Margin are kept).
func (c *Client) useSiteProtection(s *Site) {
	creds := s.ProtectionCredentials()
	if creds == nil {
		return
	}
	if b := c.ts.Load(); b != nil && (b.clientID == "" || b.clientID == creds.ClientID) {
		return
	}
	c.SetProtection(creds)
}

// SetTokenSource installs (or, with nil, removes) a custom token source.
func (c *Client) SetTokenSource(ts TokenSource) {
	if ts == nil {
		c.ts.Store(nil)
		return
	}
	c.ts.Store(&tokenSourceBox{ts: ts})
}

// Close closes the transport if it has a Close method.
func (c *Client) Close() error {
	if cl, ok := c.t.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// call runs one command: attaches a protection token when the params are
// PAT-protected and carry none, retries once with a fresh token after a
// blank/invalid/inactive protection-token error, and labels errors.
func (c *Client) call(ctx context.Context, command string, params any, result any) (err error) {
	start := time.Now()
	ctx, span, st := c.tel.start(ctx, command)
	retries := 0
	defer func() { c.tel.end(ctx, span, st, command, start, retries, err) }()
	var (
		ts   TokenSource
		prot *Protection
		tok  Secret
	)
	if b := c.ts.Load(); b != nil {
		if p, ok := params.(protected); ok {
			prot = p.protection()
			if prot.ProtectionAccessToken == "" {
				ts = b.ts
			}
		}
	}
	if ts != nil {
		var err error
		tok, err = ts.ProtectionToken(ctx)
		if err != nil {
			c.log(ctx, command, start, err)
			return err
		}
		prot.ProtectionAccessToken = tok
	}
	err = c.t.Do(ctx, command, params, result)
	if ts != nil && isRetryableTokenError(err) {
		if inv, ok := ts.(interface{ Invalidate(Secret) }); ok {
			inv.Invalidate(tok)
		}
		fresh, terr := ts.ProtectionToken(ctx)
		if terr == nil && fresh != tok {
			if c.logger != nil {
				c.logger.LogAttrs(ctx, slog.LevelWarn, "oxd rejected the protection token; retrying once with a fresh one",
					slog.String("command", command))
			}
			prot.ProtectionAccessToken = fresh
			retries++
			err = c.t.Do(ctx, command, params, result)
		}
	}
	if err != nil {
		setCommand(err, command)
	}
	if c.logger != nil {
		c.log(ctx, command, start, err)
	}
	return err
}

// setCommand labels an oxd error with the command when the transport did
// not.
func setCommand(err error, command string) {
	var oe *Error
	if errors.As(err, &oe) && oe.Command == "" {
		oe.Command = command
	}
}

func (c *Client) log(ctx context.Context, command string, start time.Time, err error) {
	if c.logger == nil {
		return
	}
	attrs := []slog.Attr{slog.String("command", command), slog.Duration("duration", time.Since(start))}
	var oe *Error
	switch {
	case err == nil:
		attrs = append(attrs, slog.String("status", "ok"))
	case errors.As(err, &oe):
		attrs = append(attrs, slog.String("status", "error"), slog.String("code", oe.Code))
	default:
		attrs = append(attrs, slog.String("status", "failed"), slog.String("error", err.Error()))
	}
	c.logger.LogAttrs(ctx, slog.LevelDebug, "oxd command", attrs...)
}

// do runs one command and returns its answer, or nil and the error.
func do[R any](ctx context.Context, c *Client, command string, params any) (*R, error) {
	var r R
	if err := c.call(ctx, command, params, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// SetupClient registers a setup client and a regular client (oxd 3.1.x).
func (c *Client) SetupClient(ctx context.Context, p SetupClientParams) (*SetupClientResponse, error) {
	return do[SetupClientResponse](ctx, c, CmdSetupClient, &p)
}

// RegisterSite registers a client at the OP through oxd.
func (c *Client) RegisterSite(ctx context.Context, p RegisterSiteParams) (*RegisterSiteResponse, error) {
	return do[RegisterSiteResponse](ctx, c, CmdRegisterSite, &p)
}

// UpdateSite updates the client registration of a site.
func (c *Client) UpdateSite(ctx context.Context, p UpdateSiteParams) (*OxdIDResponse, error) {
	return do[OxdIDResponse](ctx, c, CmdUpdateSite, &p)
}

// RemoveSite removes a site from oxd (not from the OP).
func (c *Client) RemoveSite(ctx context.Context, p RemoveSiteParams) (*OxdIDResponse, error) {
	return do[OxdIDResponse](ctx, c, CmdRemoveSite, &p)
}

// GetAuthorizationURL returns the OP's authorization URL with a fresh state
// and nonce.
func (c *Client) GetAuthorizationURL(ctx context.Context, p GetAuthorizationURLParams) (*GetAuthorizationURLResponse, error) {
	return do[GetAuthorizationURLResponse](ctx, c, CmdGetAuthorizationURL, &p)
}

// GetTokensByCode exchanges an authorization code (and its state) for tokens.
func (c *Client) GetTokensByCode(ctx context.Context, p GetTokensByCodeParams) (*GetTokensByCodeResponse, error) {
	return do[GetTokensByCodeResponse](ctx, c, CmdGetTokensByCode, &p)
}

// GetAccessTokenByRefreshToken refreshes an access token.
func (c *Client) GetAccessTokenByRefreshToken(ctx context.Context, p GetAccessTokenByRefreshTokenParams) (*TokenResponse, error) {
	return do[TokenResponse](ctx, c, CmdGetAccessTokenByRefreshToken, &p)
}

// GetUserInfo fetches the claims of the user an access token belongs to.
func (c *Client) GetUserInfo(ctx context.Context, p GetUserInfoParams) (*GetUserInfoResponse, error) {
	return do[GetUserInfoResponse](ctx, c, CmdGetUserInfo, &p)
}

// GetLogoutURI returns the OP's end-session URL.
func (c *Client) GetLogoutURI(ctx context.Context, p GetLogoutURIParams) (*GetLogoutURIResponse, error) {
	return do[GetLogoutURIResponse](ctx, c, CmdGetLogoutURI, &p)
}

// GetClientToken obtains a token with the client_credentials grant (used for
// protection access tokens).
func (c *Client) GetClientToken(ctx context.Context, p GetClientTokenParams) (*TokenResponse, error) {
	return do[TokenResponse](ctx, c, CmdGetClientToken, &p)
}

// IntrospectAccessToken introspects an access token at the OP.
func (c *Client) IntrospectAccessToken(ctx context.Context, p IntrospectAccessTokenParams) (*IntrospectAccessTokenResponse, error) {
	return do[IntrospectAccessTokenResponse](ctx, c, CmdIntrospectAccessToken, &p)
}

// RevokeToken revokes a token of the site's client at the OP's
// revocation_endpoint (RFC 7009). It is an extension of this server, not
// a command of oxd 3.1.4: other oxd servers answer it with an error.
func (c *Client) RevokeToken(ctx context.Context, p RevokeTokenParams) (*RevokeTokenResponse, error) {
	return do[RevokeTokenResponse](ctx, c, CmdRevokeToken, &p)
}

// GetClientJWKS returns the public JWKS of a private_key_jwt site's client:
// register it at the OP as the client's jwks, or point the client's
// jwks_uri at the unauthenticated route the HTTPS extension of this
// module's server serves for it (oxdserver.ClientJWKSPathPrefix + oxd_id).
// It is an extension of this server, not a command of oxd 3.1.4. A site
// whose client does not use private_key_jwt gives an invalid_request.
func (c *Client) GetClientJWKS(ctx context.Context, p GetClientJWKSParams) (*GetClientJWKSResponse, error) {
	return do[GetClientJWKSResponse](ctx, c, CmdGetClientJWKS, &p)
}

// IntrospectRPT introspects an RPT at the UMA AS.
func (c *Client) IntrospectRPT(ctx context.Context, p IntrospectRPTParams) (*IntrospectRPTResponse, error) {
	return do[IntrospectRPTResponse](ctx, c, CmdIntrospectRPT, &p)
}

// UMARSProtect registers UMA resources for the site.
func (c *Client) UMARSProtect(ctx context.Context, p UMARSProtectParams) (*OxdIDResponse, error) {
	return do[OxdIDResponse](ctx, c, CmdUMARSProtect, &p)
}

// UMARSCheckAccess decides whether an RPT grants access to path and method;
// when it does not, the answer carries a permission ticket.
func (c *Client) UMARSCheckAccess(ctx context.Context, p UMARSCheckAccessParams) (*UMARSCheckAccessResponse, error) {
	return do[UMARSCheckAccessResponse](ctx, c, CmdUMARSCheckAccess, &p)
}

// UMARPGetRPT obtains an RPT for a permission ticket. A need_info answer is
// an [*Error] whose [Error.NeedInfo] gives the new ticket and claims
// gathering details.
func (c *Client) UMARPGetRPT(ctx context.Context, p UMARPGetRPTParams) (*UMARPGetRPTResponse, error) {
	return do[UMARPGetRPTResponse](ctx, c, CmdUMARPGetRPT, &p)
}

// UMARPGetClaimsGatheringURL returns the AS claims-gathering URL for a ticket.
func (c *Client) UMARPGetClaimsGatheringURL(ctx context.Context, p UMARPGetClaimsGatheringURLParams) (*UMARPGetClaimsGatheringURLResponse, error) {
	return do[UMARPGetClaimsGatheringURLResponse](ctx, c, CmdUMARPGetClaimsGatheringURL, &p)
}

// GetRP returns the stored site (or, with List, all sites). The answer may
// contain secrets.
func (c *Client) GetRP(ctx context.Context, p GetRPParams) (*GetRPResponse, error) {
	return do[GetRPResponse](ctx, c, CmdGetRP, &p)
}

var okPrefix = []byte(`{"status":"ok","data":`)

// DecodeEnvelope decodes an oxd response envelope {"status","data"} into
// result, or returns the [*Error] it carries. It is what the transports use;
// it is exported for custom transports. The error never quotes the body.
func DecodeEnvelope(command string, body []byte, result any) error {
	// Fast path for the usual success answer, which oxd writes with
	// "status" first (@JsonPropertyOrder): decode data in one pass. If the
	// slice is not exactly one JSON value (other keys follow) Unmarshal
	// fails before decoding anything, and the general path below decides.
	if result != nil && len(body) > len(okPrefix) && body[len(body)-1] == '}' && bytes.HasPrefix(body, okPrefix) {
		data := body[len(okPrefix) : len(body)-1]
		if decodeFlat(data, result) || json.Unmarshal(data, result) == nil {
			return nil
		}
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return transportErr(command, ErrProtocol, errors.New("response is not a JSON envelope"), true)
	}
	switch env.Status {
	case "ok":
		if result == nil || len(env.Data) == 0 || string(env.Data) == "null" {
			return nil
		}
		if err := json.Unmarshal(env.Data, result); err != nil {
			return transportErr(command, ErrProtocol, errors.New("response data does not match the command's answer"), true)
		}
		return nil
	case "error":
		e := &Error{Command: command}
		if len(env.Data) == 0 || string(env.Data) == "null" || json.Unmarshal(env.Data, e) != nil || e.Code == "" {
			return transportErr(command, ErrProtocol, errors.New("error response without an error code"), true)
		}
		if string(e.Details) == "null" {
			e.Details = nil
		}
		return e
	default:
		return transportErr(command, ErrProtocol, errors.New("response status is neither ok nor error"), true)
	}
}

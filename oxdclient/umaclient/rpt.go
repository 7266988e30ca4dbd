package umaclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oxdgo/oxd/internal/scopeexpr"
	"github.com/oxdgo/oxd/oxdclient"
)

// GrantTypeUMATicket is the grant type of the RPT request (UMA 2.0 Grant
// §3.3.1).
const GrantTypeUMATicket = "urn:ietf:params:oauth:grant-type:uma-ticket"

// ClaimTokenFormatIDToken is the claim token format of an OpenID Connect
// ID token, the usual pushed claim token (UMA 2.0 Grant §3.3.1).
const ClaimTokenFormatIDToken = "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"

// maxBody bounds the discovery document and token responses read from an
// authorization server.
const maxBody = 256 << 10

// Config configures a [Client]. Issuers is required, and exactly one of
// Oxd or ClientID must be set.
type Config struct {
	// Issuers are the issuer URIs of the authorization servers this client
	// trusts, compared exactly with a challenge's as_uri (a trailing slash
	// is ignored). A challenge naming another server is refused with
	// [ErrUntrustedAS] before anything is sent: a resource server must
	// not be able to send the client's credentials, tickets or claims to
	// a server of its choosing.
	Issuers []string

	// Oxd and OxdID: obtain RPTs through oxd (uma_rp_get_rpt) for the
	// site OxdID, whose OP is the authorization server. Protection tokens
	// are attached by the oxdclient.Client as usual.
	Oxd   *oxdclient.Client
	OxdID string

	// ClientID and ClientSecret: without oxd, obtain RPTs directly at the
	// authorization server's token endpoint (found through
	// <as_uri>/.well-known/uma2-configuration; https whenever the issuer
	// is), authenticating with client_secret_basic.
	ClientID     string
	ClientSecret oxdclient.Secret

	// HTTPClient sends the direct requests. Default: a client with a 30s
	// timeout. Its CheckRedirect is replaced: redirects are never
	// followed (a redirect answer is an error).
	HTTPClient *http.Client
}

// Options are the optional parameters of an RPT request (UMA 2.0 Grant
// §3.3.1).
type Options struct {
	// ClaimToken is a pushed claim token, ClaimTokenFormat its format
	// (default ClaimTokenFormatIDToken when ClaimToken is set).
	ClaimToken       oxdclient.Secret
	ClaimTokenFormat string
	// PCT is a persisted claims token from an earlier RPT answer.
	PCT oxdclient.Secret
	// RPT is an RPT to upgrade.
	RPT oxdclient.Secret
	// Scope asks for more scopes than the ticket's: scope tokens (RFC
	// 6749 §3.3: printable ASCII without space, '"' and '\'); RPT
	// refuses any other value before sending anything.
	Scope []string
}

// RPT is the answer of a successful RPT request.
type RPT struct {
	AccessToken oxdclient.Secret
	TokenType   string
	// ExpiresIn is the lifetime in seconds when the AS told it (direct
	// requests only), else 0.
	ExpiresIn int64
	PCT       oxdclient.Secret
	Upgraded  bool
}

// Client obtains RPTs for UMA challenges. It is safe for concurrent use.
type Client struct {
	issuers map[string]bool
	oxd     *oxdclient.Client
	oxdID   string
	id      string
	secret  oxdclient.Secret
	hc      *http.Client

	mu       sync.Mutex
	metadata map[string]string // issuer → token endpoint
}

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("umaclient: Config.Issuers is empty: list the authorization servers this client trusts")
	}
	c := &Client{issuers: map[string]bool{}, metadata: map[string]string{}}
	for _, iss := range cfg.Issuers {
		if err := checkIssuerURI(iss); err != nil {
			return nil, fmt.Errorf("umaclient: Config.Issuers: %q %w", iss, err)
		}
		c.issuers[strings.TrimSuffix(iss, "/")] = true
	}
	switch {
	case cfg.Oxd != nil && cfg.ClientID != "":
		return nil, errors.New("umaclient: set either Config.Oxd or Config.ClientID, not both")
	case cfg.Oxd != nil:
		if cfg.OxdID == "" {
			return nil, errors.New("umaclient: Config.OxdID is required with Config.Oxd")
		}
		c.oxd, c.oxdID = cfg.Oxd, cfg.OxdID
	case cfg.ClientID != "":
		if cfg.ClientSecret.IsZero() {
			return nil, errors.New("umaclient: Config.ClientSecret is required with Config.ClientID")
		}
		c.id, c.secret = cfg.ClientID, cfg.ClientSecret
		hc := http.Client{Timeout: 30 * time.Second}
		if cfg.HTTPClient != nil {
			hc = *cfg.HTTPClient
		}
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		c.hc = &hc
	default:
		return nil, errors.New("umaclient: set Config.Oxd (with OxdID) or Config.ClientID (with ClientSecret)")
	}
	return c, nil
}

// Errors of [Client.RPT], for errors.Is.
var (
	// ErrUntrustedAS: the challenge's as_uri is not one of Config.Issuers.
	// Nothing was sent.
	ErrUntrustedAS = errors.New("umaclient: the challenge names an authorization server that is not in Config.Issuers")
	// ErrDiscovery: the AS's UMA discovery document could not be fetched
	// or is not valid (unreachable, not 200, a redirect, too large, not
	// JSON, another issuer, no usable token_endpoint).
	ErrDiscovery = errors.New("umaclient: UMA discovery failed")
	// ErrTokenEndpoint: the token endpoint could not be reached or
	// answered something that is neither an RPT nor an OAuth error.
	ErrTokenEndpoint = errors.New("umaclient: token endpoint failed")

	// Sentinels matching an [*Error] by code (UMA 2.0 Grant §3.3.6).
	ErrNeedInfo         = &Error{Code: "need_info"}
	ErrRequestSubmitted = &Error{Code: "request_submitted"}
	ErrRequestDenied    = &Error{Code: "request_denied"}
	ErrInvalidGrant     = &Error{Code: "invalid_grant"}
	ErrInvalidScope     = &Error{Code: "invalid_scope"}
)

// Error is an error answer of the authorization server to an RPT request
// (UMA 2.0 Grant §3.3.6), through oxd or direct. Match the code with
// errors.Is(err, ErrNeedInfo) etc.
//
// For need_info, Ticket is the new ticket (it differs from the one sent;
// an answer repeating it is refused as a protocol error), and
// RequiredClaims and/or RedirectUser say what the AS needs: push a claim
// token ([Options.ClaimToken]) or send the user to RedirectUser (claims
// gathering), then call [Client.RPT] again with [Error.Challenge].
// RedirectUser is empty when the AS (directly or through oxd) named a URL
// that is not https (or http on a loopback host) with a host and without
// user information: a javascript: or data: URL never reaches the caller. For
// request_submitted, Ticket is the ticket to poll with, not before
// Interval seconds.
//
// Its message names the code, the HTTP status and a shortened
// description, never a ticket or a token.
type Error struct {
	Code           string
	Description    string
	HTTPStatus     int
	Ticket         string
	RequiredClaims []oxdclient.RequiredClaim
	RedirectUser   string
	Interval       int

	asURI, realm string
}

func (e *Error) Error() string {
	msg := "umaclient: authorization server answered " + e.Code
	if e.HTTPStatus != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.HTTPStatus)
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Is matches a sentinel with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code != "" && t.Code == e.Code
}

// Challenge returns the challenge to retry with: the original one with the
// new ticket of a need_info or request_submitted answer, or nil when the
// answer has no ticket.
func (e *Error) Challenge() *Challenge {
	if e.Ticket == "" || e.asURI == "" {
		return nil
	}
	return &Challenge{Realm: e.realm, ASURI: e.asURI, Ticket: e.Ticket}
}

// RPT redeems the ticket of ch for an RPT at the authorization server
// named by ch.ASURI, which must be one of Config.Issuers. It goes through
// oxd when the client was configured with Config.Oxd, else to the AS's
// token endpoint directly. An AS error is an [*Error]; other failures wrap
// [ErrUntrustedAS], [ErrDiscovery], [ErrTokenEndpoint] or an oxdclient
// error.
func (c *Client) RPT(ctx context.Context, ch *Challenge, o Options) (*RPT, error) {
	if ch == nil || ch.Ticket == "" {
		return nil, errors.New("umaclient: RPT needs a challenge with a ticket")
	}
	if !c.issuers[strings.TrimSuffix(ch.ASURI, "/")] {
		return nil, ErrUntrustedAS
	}
	for _, s := range o.Scope {
		// One scope-token each (RFC 6749 §3.3): a space would add scopes
		// to the space-separated request.
		if !scopeexpr.ValidScope(s) {
			return nil, errors.New("umaclient: Options.Scope holds a value that is not a scope token")
		}
	}
	format := o.ClaimTokenFormat
	if !o.ClaimToken.IsZero() && format == "" {
		format = ClaimTokenFormatIDToken
	}
	var (
		r   *RPT
		err error
	)
	if c.oxd != nil {
		r, err = c.viaOxd(ctx, ch, o, format)
	} else {
		r, err = c.direct(ctx, ch, o, format)
	}
	var ae *Error
	if errors.As(err, &ae) {
		ae.asURI, ae.realm = ch.ASURI, ch.Realm
		if ae.Ticket != "" && ae.Ticket == ch.Ticket {
			return nil, fmt.Errorf("%w: the %s answer repeats the ticket that was sent (UMA Grant §5.5)", ErrTokenEndpoint, ae.Code)
		}
		if ae.Code == "need_info" && ae.Ticket == "" {
			return nil, fmt.Errorf("%w: need_info without a new ticket", ErrTokenEndpoint)
		}
	}
	return r, err
}

func (c *Client) viaOxd(ctx context.Context, ch *Challenge, o Options, format string) (*RPT, error) {
	res, err := c.oxd.UMARPGetRPT(ctx, oxdclient.UMARPGetRPTParams{
		OxdID: c.oxdID, Ticket: ch.Ticket, ClaimToken: o.ClaimToken, ClaimTokenFormat: format,
		PCT: o.PCT, RPT: o.RPT, Scope: o.Scope,
	})
	if err != nil {
		return nil, fromOxd(err)
	}
	if res.AccessToken.IsZero() {
		return nil, fmt.Errorf("%w: oxd answered no RPT", ErrTokenEndpoint)
	}
	return &RPT{AccessToken: res.AccessToken, TokenType: res.TokenType, PCT: res.PCT, Upgraded: res.Updated}, nil
}

// fromOxd turns oxd's need_info and http_status_<N> answers (which carry
// the AS's error body) into an [*Error]; other errors are returned as
// they are.
func fromOxd(err error) error {
	var oe *oxdclient.Error
	if !errors.As(err, &oe) {
		return err
	}
	if ni, ok := oe.NeedInfo(); ok {
		return &Error{Code: "need_info", HTTPStatus: http.StatusForbidden, Ticket: ni.Ticket,
			RequiredClaims: ni.RequiredClaims, RedirectUser: safeRedirectUser(ni.RedirectUser)}
	}
	if st := oe.HTTPStatus(); st != 0 {
		if ae := parseASError(st, []byte(oe.Description)); ae != nil {
			return ae
		}
	}
	return err
}

func (c *Client) direct(ctx context.Context, ch *Challenge, o Options, format string) (*RPT, error) {
	endpoint, err := c.tokenEndpoint(ctx, strings.TrimSuffix(ch.ASURI, "/"))
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {GrantTypeUMATicket}, "ticket": {ch.Ticket}}
	if !o.ClaimToken.IsZero() {
		form.Set("claim_token", o.ClaimToken.Reveal())
		form.Set("claim_token_format", format)
	}
	if !o.PCT.IsZero() {
		form.Set("pct", o.PCT.Reveal())
	}
	if !o.RPT.IsZero() {
		form.Set("rpt", o.RPT.Reveal())
	}
	if len(o.Scope) > 0 {
		form.Set("scope", strings.Join(o.Scope, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenEndpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret.Reveal()))
	status, body, err := c.fetch(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenEndpoint, err)
	}
	if status != http.StatusOK {
		if ae := parseASError(status, body); ae != nil {
			return nil, ae
		}
		return nil, fmt.Errorf("%w: HTTP %d without an OAuth error body", ErrTokenEndpoint, status)
	}
	var tr struct {
		AccessToken oxdclient.Secret `json:"access_token"`
		TokenType   string           `json:"token_type"`
		ExpiresIn   int64            `json:"expires_in"`
		PCT         oxdclient.Secret `json:"pct"`
		Upgraded    bool             `json:"upgraded"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("%w: the answer is not a token response", ErrTokenEndpoint)
	}
	if tr.AccessToken.IsZero() || !strings.EqualFold(tr.TokenType, "Bearer") {
		return nil, fmt.Errorf("%w: the answer has no access_token of token_type Bearer", ErrTokenEndpoint)
	}
	return &RPT{AccessToken: tr.AccessToken, TokenType: tr.TokenType, ExpiresIn: max(tr.ExpiresIn, 0), PCT: tr.PCT, Upgraded: tr.Upgraded}, nil
}

// tokenEndpoint returns the token endpoint of issuer from its UMA
// discovery document (UMA 2.0 Grant §2), cached per issuer.
func (c *Client) tokenEndpoint(ctx context.Context, issuer string) (string, error) {
	c.mu.Lock()
	ep, ok := c.metadata[issuer]
	c.mu.Unlock()
	if ok {
		return ep, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/uma2-configuration", nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrDiscovery, err)
	}
	req.Header.Set("Accept", "application/json")
	status, body, err := c.fetch(req)
	if err != nil {
		return "", fmt.Errorf("%w at %s: %w", ErrDiscovery, issuer, err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("%w at %s: HTTP %d", ErrDiscovery, issuer, status)
	}
	var md struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.Unmarshal(body, &md); err != nil {
		return "", fmt.Errorf("%w at %s: the document is not JSON metadata", ErrDiscovery, issuer)
	}
	// RFC 8414 §3.3: the issuer in the document must be the one asked.
	if strings.TrimSuffix(md.Issuer, "/") != issuer {
		return "", fmt.Errorf("%w at %s: the document names another issuer", ErrDiscovery, issuer)
	}
	if err := checkEndpoint(md.TokenEndpoint); err != nil {
		return "", fmt.Errorf("%w at %s: token_endpoint %w", ErrDiscovery, issuer, err)
	}
	// The credentials go where the issuer's https went: an https issuer
	// naming a plain-http endpoint (even on loopback) is a downgrade.
	if strings.HasPrefix(strings.ToLower(issuer), "https:") && !strings.HasPrefix(strings.ToLower(md.TokenEndpoint), "https:") {
		return "", fmt.Errorf("%w at %s: token_endpoint is plain http for an https issuer", ErrDiscovery, issuer)
	}
	c.mu.Lock()
	c.metadata[issuer] = md.TokenEndpoint
	c.mu.Unlock()
	return md.TokenEndpoint, nil
}

// checkEndpoint: an absolute https URL (http on loopback) without user
// information or fragment.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return errors.New("is not an absolute URL with a host")
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !isLoopbackHost(u.Hostname())) {
		return errors.New("is neither https nor http on a loopback host")
	}
	return nil
}

// fetch sends req and reads at most maxBody bytes of the answer. A
// redirect is an error (CheckRedirect stops it).
func (c *Client) fetch(req *http.Request) (int, []byte, error) {
	res, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// url.Error quotes the URL only; the form (and its secrets) is
			// in the body, never in the message.
			return 0, nil, ue.Err
		}
		return 0, nil, err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 && res.StatusCode < 400 {
		return 0, nil, fmt.Errorf("redirect (HTTP %d) refused", res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		return 0, nil, err
	}
	if len(body) > maxBody {
		return 0, nil, fmt.Errorf("answer larger than %d bytes", maxBody)
	}
	if ct := res.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return 0, nil, fmt.Errorf("answer of type %q is not JSON (HTTP %d)", truncName(ct), res.StatusCode)
		}
	}
	return res.StatusCode, body, nil
}

// parseASError decodes an OAuth/UMA error body, or returns nil when body
// is not one.
func parseASError(status int, body []byte) *Error {
	var v struct {
		Error            string          `json:"error"`
		ErrorDescription string          `json:"error_description"`
		Ticket           string          `json:"ticket"`
		RequiredClaims   json.RawMessage `json:"required_claims"`
		RedirectUser     string          `json:"redirect_user"`
		Interval         int             `json:"interval"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error == "" {
		return nil
	}
	e := &Error{Code: clean(v.Error, 64), Description: clean(v.ErrorDescription, 200), HTTPStatus: status,
		Ticket: v.Ticket, RedirectUser: safeRedirectUser(v.RedirectUser), Interval: max(v.Interval, 0)}
	if len(v.RequiredClaims) > 0 && string(v.RequiredClaims) != "null" {
		if err := json.Unmarshal(v.RequiredClaims, &e.RequiredClaims); err != nil {
			return nil
		}
	}
	return e
}

// safeRedirectUser returns the claims-gathering URL of a need_info answer
// (direct or passed through by oxd), or "" for one the user could not
// safely be sent to (another scheme than https, http off loopback, no
// host, user information).
func safeRedirectUser(s string) string {
	if s == "" || checkEndpoint(s) != nil {
		return ""
	}
	return s
}

// clean keeps printable characters of s, at most n bytes.
func clean(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > n {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

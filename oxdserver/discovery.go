package oxdserver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oxdgo/oxd/internal/clientauth"
	"github.com/oxdgo/oxd/internal/hostutil"
	"github.com/oxdgo/oxd/oxdclient"
)

// maxOPResponse bounds every body read from the OP.
const maxOPResponse = 1 << 20

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// opRequest is one HTTP exchange with the OP or AS.
type opRequest struct {
	endpoint string // name for errors and logs ("token", "userinfo", …)
	method   string
	url      string
	form     url.Values // form body (application/x-www-form-urlencoded)
	json     any        // JSON body
	// auth authenticates the client (clientauth.Apply on a copy of form:
	// a retried request gets a fresh client assertion).
	auth   *clientauth.Credentials
	bearer string
}

// send performs the exchange. It returns the body of a 2xx answer; a
// non-2xx answer is an *opStatusError, a transport failure an
// *opCallError. Neither error quotes a secret. The exchange has its client
// span and duration (endpoint kind, method, status), and the OP receives
// its trace context (traceparent).
func (e *Engine) send(ctx context.Context, r opRequest) (body []byte, status int, err error) {
	ctx, oc := e.tel.startOPCall(ctx, r.endpoint, r.method, r.url)
	defer func() { oc.end(ctx, status, err) }()
	return e.sendHTTP(ctx, r, &oc)
}

func (e *Engine) sendHTTP(ctx context.Context, r opRequest, oc *opCall) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.OPTimeout)
	defer cancel()
	var body io.Reader
	ctype := ""
	authHeader := http.Header{}
	if r.auth != nil {
		// Apply on a copy: callers retry with the same form (withPAT,
		// introspection fallbacks) and Apply refuses a form that already
		// carries credentials.
		form := url.Values{}
		for k, v := range r.form {
			form[k] = slices.Clone(v)
		}
		if err := clientauth.Apply(authHeader, form, r.url, *r.auth); err != nil {
			return nil, 0, authConfigError(err)
		}
		r.form = form
	}
	switch {
	case r.form != nil:
		body = strings.NewReader(r.form.Encode())
		ctype = "application/x-www-form-urlencoded"
	case r.json != nil:
		b, err := json.Marshal(r.json)
		if err != nil {
			return nil, 0, fmt.Errorf("encode %s request: %w", r.endpoint, err)
		}
		body = strings.NewReader(string(b))
		ctype = "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, 0, &opCallError{endpoint: r.endpoint, what: whatUnreachable, err: errors.New("bad endpoint URL")}
	}
	if err := e.checkOPURL(req.URL); err != nil {
		return nil, 0, &opCallError{endpoint: r.endpoint, what: err.Error()}
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range authHeader {
		req.Header[k] = v
	}
	if r.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	oc.inject(ctx, req.Header)
	resp, err := e.http.Do(req)
	if err != nil {
		what := whatUnreachable
		if ctx.Err() != nil || isTimeout(err) {
			what = whatTimeout
		}
		// The *url.Error names the URL; endpoint URLs carry no secrets
		// (tokens travel in bodies and headers only). It goes to logs only:
		// the answer is one generic message (no open/closed port oracle).
		return nil, 0, &opCallError{endpoint: r.endpoint, what: what, err: errors.Unwrap(err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxOPResponse+1))
	if err != nil {
		what := whatInvalid
		if ctx.Err() != nil || isTimeout(err) {
			what = whatTimeout
		}
		return nil, resp.StatusCode, &opCallError{endpoint: r.endpoint, what: what, err: err}
	}
	if len(b) > maxOPResponse {
		return nil, resp.StatusCode, &opCallError{endpoint: r.endpoint, what: whatInvalid, err: errors.New("answer too large")}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &opStatusError{endpoint: r.endpoint, status: resp.StatusCode, body: b}
		if r.auth != nil {
			se.authMethod = string(cmp.Or(r.auth.Method, clientauth.DefaultMethod))
		}
		return nil, resp.StatusCode, se
	}
	return b, resp.StatusCode, nil
}

// sendJSON performs the exchange and decodes a JSON object answer.
func (e *Engine) sendJSON(ctx context.Context, r opRequest, out any) error {
	_, err := e.sendJSONSized(ctx, r, out)
	return err
}

// sendJSONSized is sendJSON that also returns the answer's size in bytes.
func (e *Engine) sendJSONSized(ctx context.Context, r opRequest, out any) (int, error) {
	b, _, err := e.send(ctx, r)
	if err != nil {
		return 0, err
	}
	return len(b), decodeOP(r.endpoint, b, out)
}

func decodeOP(endpoint string, b []byte, out any) error {
	trim := strings.TrimSpace(string(b))
	if !strings.HasPrefix(trim, "{") {
		return &opCallError{endpoint: endpoint, what: whatInvalid, err: errors.New("answer is not a JSON object")}
	}
	dec := json.NewDecoder(strings.NewReader(trim))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return &opCallError{endpoint: endpoint, what: whatInvalid, err: errors.New("answer is not valid JSON of the expected shape")}
	}
	return nil
}

// checkOPURL applies the OP rules to every URL the engine calls: https
// (plain http only with InsecureAllowHTTP, or InsecureAllowLoopbackHTTP on
// a loopback host), and a host on the OPHosts allow-list when it is set.
// The error text is the refusal reason (no secret, no network detail).
func (e *Engine) checkOPURL(u *url.URL) error {
	switch u.Scheme {
	case "https":
	case "http":
		if !e.cfg.InsecureAllowHTTP && !(e.cfg.InsecureAllowLoopbackHTTP && hostutil.PlainHTTPStaysLocal(u.Hostname())) {
			return errPlainHTTP
		}
	default:
		return errors.New("unsupported URL scheme")
	}
	if len(e.allowed) > 0 && !e.opHostAllowed(u) {
		return errNotAllowed
	}
	return nil
}

var (
	errPlainHTTP  = errors.New(whatPlainHTTP)
	errNotAllowed = errors.New(whatNotAllowed)
)

// opHostAllowed reports whether u's host is on the allow-list: an entry
// with a port matches that host and port, one without any port.
func (e *Engine) opHostAllowed(u *url.URL) bool {
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	for _, a := range e.allowed {
		if a.host == host && (a.port == "" || a.port == port) {
			return true
		}
	}
	return false
}

type allowedHost struct{ host, port string }

// parseOPHosts parses Config.OPHosts: "host", "host:port" or a URL.
func parseOPHosts(list []string) ([]allowedHost, error) {
	var out []allowedHost
	for _, raw := range list {
		v := strings.TrimSpace(raw)
		if v == "" {
			continue
		}
		if !strings.Contains(v, "://") {
			v = "https://" + v
		}
		u, err := url.Parse(v)
		if err != nil || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
			return nil, fmt.Errorf("oxdserver: invalid OPHosts entry %q (want host, host:port or an origin URL)", raw)
		}
		port := u.Port()
		if port == "" && strings.Contains(raw, "://") {
			port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
		}
		out = append(out, allowedHost{strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")), port})
	}
	return out, nil
}

// sameOrigin reports whether endpoint has the issuer's scheme, host and
// port (an endpoint whose host is on the allow-list is also accepted).
func (e *Engine) endpointAllowed(issuer, endpoint string) bool {
	iu, err1 := url.Parse(issuer)
	eu, err2 := url.Parse(endpoint)
	if err1 != nil || err2 != nil {
		return false
	}
	if strings.EqualFold(iu.Scheme, eu.Scheme) && strings.EqualFold(iu.Host, eu.Host) {
		return true
	}
	return len(e.allowed) > 0 && eu.Scheme == "https" && e.opHostAllowed(eu)
}

// checkEndpoints verifies that every non-empty endpoint of a discovery
// document shares the issuer's origin (or is on the allow-list): a
// discovery document must not send the engine's requests, which carry
// client secrets and tokens, anywhere else.
func (e *Engine) checkEndpoints(issuer string, endpoints ...string) error {
	for _, ep := range endpoints {
		if ep != "" && !e.endpointAllowed(issuer, ep) {
			return fmt.Errorf("%w: an endpoint is not on the issuer's origin nor on the OP allow-list", errBadDiscovery)
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// oidcConfig is the part of the OpenID Provider metadata the engine uses.
type oidcConfig struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	UserinfoEndpoint                          string   `json:"userinfo_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	RegistrationEndpoint                      string   `json:"registration_endpoint"`
	EndSessionEndpoint                        string   `json:"end_session_endpoint"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	ScopesSupported                           []string `json:"scopes_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	// Client authentication (nil when absent: OIDC Discovery §3 then
	// means client_secret_basic only).
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	// IssParameterSupported: authorization responses carry iss (RFC 9207).
	IssParameterSupported bool `json:"authorization_response_iss_parameter_supported"`
}

// umaConfig is the part of the UMA 2.0 AS metadata the engine uses.
type umaConfig struct {
	Issuer                       string `json:"issuer"`
	TokenEndpoint                string `json:"token_endpoint"`
	IntrospectionEndpoint        string `json:"introspection_endpoint"`
	ResourceRegistrationEndpoint string `json:"resource_registration_endpoint"`
	PermissionEndpoint           string `json:"permission_endpoint"`
	ClaimsInteractionEndpoint    string `json:"claims_interaction_endpoint"`
}

// opBase normalises op_host as oxd does: https:// is assumed when no scheme
// is given; trailing slashes are removed.
func opBase(opHost string) string {
	h := strings.TrimSpace(opHost)
	if !strings.Contains(h, "://") {
		h = "https://" + h
	}
	return strings.TrimRight(h, "/")
}

// discoveryIssuer is the issuer expected for op_host and op_discovery_path
// (the path gets a leading slash if it lacks one).
func discoveryIssuer(opHost, path string) string {
	p := strings.Trim(strings.TrimSpace(path), "/")
	if p == "" {
		return opBase(opHost)
	}
	return opBase(opHost) + "/" + p
}

func sameIssuer(a, b string) bool { return strings.TrimRight(a, "/") == strings.TrimRight(b, "/") }

func absURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// discCacheSize bounds the discovery documents and JWKS the engine keeps
// (the least recently used are dropped first): a few per OP it serves.
// discCacheBytes bounds the sum of their sizes as fetched: an OP a caller
// names may answer documents of maxOPResponse that decode to more (a
// real OP's are a few kilobytes).
const (
	discCacheSize  = 1024
	discCacheBytes = 32 << 20
)

// cachedFetch returns the cached value under key when fresh, else fetches
// it (one fetch per key at a time); fetch returns the value and the size
// in bytes of the document it decoded. A failed fetch keeps serving a stale
// value when there is one. force skips the freshness check.
func (e *Engine) cachedFetch(ctx context.Context, key string, ttl interface{ fresh(c *cached) bool }, force bool, fetch func(context.Context) (any, int, error)) (any, error) {
	c, _ := e.disc.get(key, e.now())
	if c != nil && !force && ttl.fresh(c) {
		return c.v, nil
	}
	ch := e.flight.DoChan(key, func() (any, error) {
		// Detached from one caller's cancellation; bounded by OPTimeout.
		v, size, err := fetch(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		// Kept until evicted: a stale document serves when a refetch fails.
		e.disc.putCost(key, &cached{v: v, fetched: e.now()}, time.Time{}, discCacheSize, int64(size), discCacheBytes)
		return v, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			if c != nil && !force {
				e.log.Warn("oxdserver: refetch failed, using the cached document", "url", key, "error", res.Err.Error())
				return c.v, nil
			}
			return nil, res.Err
		}
		return res.Val, nil
	}
}

type maxAge struct {
	e *Engine
	d int64 // nanoseconds
}

func (m maxAge) fresh(c *cached) bool { return m.e.now().Sub(c.fetched).Nanoseconds() < m.d }

// oidc returns the OpenID Provider metadata of a site's OP.
func (e *Engine) oidc(ctx context.Context, opHost, discoveryPath string) (*oidcConfig, error) {
	if strings.TrimSpace(opHost) == "" {
		return nil, oxdErr(oxdclient.CodeInvalidOPHost, descInvalidOPHost)
	}
	issuer := discoveryIssuer(opHost, discoveryPath)
	u := issuer + "/.well-known/openid-configuration"
	v, err := e.cachedFetch(ctx, "oidc "+u, maxAge{e, int64(e.cfg.DiscoveryTTL)}, false, func(ctx context.Context) (any, int, error) {
		var doc oidcConfig
		size, err := e.sendJSONSized(ctx, opRequest{endpoint: "discovery", method: http.MethodGet, url: u}, &doc)
		if err != nil {
			return nil, 0, err
		}
		switch {
		case !sameIssuer(doc.Issuer, issuer):
			return nil, 0, fmt.Errorf("%w: issuer %q does not match %q", errBadDiscovery, doc.Issuer, issuer)
		case !absURL(doc.AuthorizationEndpoint) || !absURL(doc.TokenEndpoint) || !absURL(doc.JWKSURI):
			return nil, 0, fmt.Errorf("%w: authorization_endpoint, token_endpoint and jwks_uri are required", errBadDiscovery)
		}
		if err := e.checkEndpoints(issuer, doc.TokenEndpoint, doc.UserinfoEndpoint, doc.JWKSURI, doc.RegistrationEndpoint,
			doc.IntrospectionEndpoint, doc.AuthorizationEndpoint, doc.EndSessionEndpoint, doc.RevocationEndpoint); err != nil {
			return nil, 0, err
		}
		return &doc, size, nil
	})
	if err != nil {
		return nil, e.discoveryError(ctx, oxdclient.CodeNoConnectDiscoveryResponse, descNoDiscovery, u, err)
	}
	return v.(*oidcConfig), nil
}

// uma returns the UMA 2.0 AS metadata at op_host (as oxd 3.1.4, the
// op_discovery_path is not used for UMA discovery).
func (e *Engine) uma(ctx context.Context, site *Site) (*umaConfig, error) {
	base := opBase(site.OPHost)
	u := base + "/.well-known/uma2-configuration"
	v, err := e.cachedFetch(ctx, "uma "+u, maxAge{e, int64(e.cfg.DiscoveryTTL)}, false, func(ctx context.Context) (any, int, error) {
		var doc umaConfig
		size, err := e.sendJSONSized(ctx, opRequest{endpoint: "uma discovery", method: http.MethodGet, url: u}, &doc)
		if err != nil {
			return nil, 0, err
		}
		if doc.Issuer != "" && !sameIssuer(doc.Issuer, base) && !sameIssuer(doc.Issuer, discoveryIssuer(site.OPHost, site.OPDiscoveryPath)) {
			return nil, 0, fmt.Errorf("%w: issuer %q does not match %q", errBadDiscovery, doc.Issuer, base)
		}
		if !absURL(doc.TokenEndpoint) {
			return nil, 0, fmt.Errorf("%w: token_endpoint is required", errBadDiscovery)
		}
		if err := e.checkEndpoints(base, doc.TokenEndpoint, doc.IntrospectionEndpoint, doc.ResourceRegistrationEndpoint,
			doc.PermissionEndpoint, doc.ClaimsInteractionEndpoint); err != nil {
			return nil, 0, err
		}
		return &doc, size, nil
	})
	if err != nil {
		return nil, e.discoveryError(ctx, oxdclient.CodeNoUMADiscoveryResponse, descNoUMADiscovery, u, err)
	}
	return v.(*umaConfig), nil
}

var errBadDiscovery = errors.New("invalid discovery document")

// discoveryError maps a failed discovery to its oxd code. The answer names
// the URL tried (built from the caller's own op_host, so it tells the
// caller nothing new) and says only whether the engine refused the OP by
// its rules (plain http, not on the allow-list) or could not get a valid
// document; network details, HTTP statuses and bodies are not passed on
// (they would let a caller probe hosts and ports through the engine). The
// reason goes to the debug log.
func (e *Engine) discoveryError(ctx context.Context, code, desc, tried string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	reason := "unreachable, or not a valid discovery document"
	var ce *opCallError
	if errors.As(err, &ce) && (ce.what == whatPlainHTTP || ce.what == whatNotAllowed) {
		reason = ce.what
	}
	e.log.DebugContext(ctx, "oxdserver: discovery failed", "reason", err.Error())
	msg := desc
	if t := urlForMessage(tried); t != "" {
		msg += " from " + t
	}
	return oxdErr(code, msg+" ("+reason+"). Check op_host: is the OP running at that address?")
}

// urlForMessage is u for an error message: without user information, query
// or fragment, printable ASCII only, at most 200 bytes; "" when u does not
// parse.
func urlForMessage(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return ""
	}
	p.User, p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment = nil, "", false, "", ""
	return sanitizeOAuth(p.String(), 200)
}

// supports reports whether list (an OP metadata list) contains v. An absent
// list means unknown: def is returned.
func supports(list []string, v string, def bool) bool {
	if list == nil {
		return def
	}
	return slices.Contains(list, v)
}

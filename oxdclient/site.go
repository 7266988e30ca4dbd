package oxdclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/oxdgo/oxd/internal/atomicfile"
)

// Site is the result of the one-time registration of an application with
// oxd, as kept between runs by [EnsureSite] (the oxd-node demo keeps the
// same facts in its settings.json).
//
// OxdID names the application's site at oxd: every command for its users
// carries it. With setup_client, ClientID and ClientSecret are the *setup*
// client's credentials, used only to obtain protection access tokens
// ([Site.ProtectionCredentials]); ClientIDOfOxdID is the client the users
// log in to. With register_site the file holds only OxdID, OPHost and
// OPDiscoveryPath (a pre-registered client's secret stays with the
// application's own configuration).
//
// The JSON form carries the secrets in clear text: [SaveSite] writes it
// with permissions 0600. Printing a Site redacts them.
type Site struct {
	OxdID           string `json:"oxd_id"`
	OPHost          string `json:"op_host"`
	OPDiscoveryPath string `json:"op_discovery_path,omitempty"`

	// The redirect URIs the site was registered with, kept so that
	// [EnsureSite] can tell when the parameters of a later start differ
	// (files written before these fields existed lack them).
	AuthorizationRedirectURI string `json:"authorization_redirect_uri,omitempty"`
	PostLogoutRedirectURI    string `json:"post_logout_redirect_uri,omitempty"`

	// Setup client (setup_client only).
	ClientIDOfOxdID               string `json:"client_id_of_oxd_id,omitempty"`
	SetupClientOxdID              string `json:"setup_client_oxd_id,omitempty"`
	ClientID                      string `json:"client_id,omitempty"`
	ClientSecret                  Secret `json:"client_secret,omitempty"`
	ClientRegistrationAccessToken Secret `json:"client_registration_access_token,omitempty"`
	ClientRegistrationClientURI   string `json:"client_registration_client_uri,omitempty"`
	ClientIDIssuedAt              int64  `json:"client_id_issued_at,omitempty"`
	ClientSecretExpiresAt         int64  `json:"client_secret_expires_at,omitempty"`
	// ClientAuthenticationMethod is how the setup client authenticates at
	// the OP for protection tokens (get_client_token's
	// authentication_method): setup_client_token_endpoint_auth_method, or
	// the site's client_token_endpoint_auth_method when one pre-registered
	// client plays both roles; "" means client_secret_basic (also a setup
	// client the server registered, and files written before the field
	// existed).
	ClientAuthenticationMethod string `json:"client_authentication_method,omitempty"`

	// Command is the command that created the site: "setup_client" or
	// "register_site".
	Command string `json:"command,omitempty"`
}

// ProtectionCredentials returns the setup client's credentials for
// [Client.SetProtection], or nil when the site has none (register_site).
// A setup client without a secret (one pre-registered private_key_jwt or
// public client playing both roles) has none either: such a site works
// only with an oxd that does not enforce protection tokens.
func (s *Site) ProtectionCredentials() *ProtectionCredentials {
	if s == nil || s.ClientID == "" || s.ClientSecret.IsZero() || s.Command != CmdSetupClient {
		return nil
	}
	return &ProtectionCredentials{
		ClientID:             s.ClientID,
		ClientSecret:         s.ClientSecret,
		OPHost:               s.OPHost,
		OPDiscoveryPath:      s.OPDiscoveryPath,
		AuthenticationMethod: s.ClientAuthenticationMethod,
	}
}

// setupClientMethod is the authentication method of the setup client that
// setup_client created for p, whose answer named setupClientID: the
// setup_client_token_endpoint_auth_method, or the site's method when the
// one pre-registered client plays both roles. It is "" for
// client_secret_basic, get_client_token's default (sent as no
// authentication_method, which every oxd understands), and for a setup
// client the server registered.
func setupClientMethod(p SetupClientParams, setupClientID string) string {
	m := ""
	switch {
	case p.SetupClientID != "" && setupClientID == p.SetupClientID:
		m = strings.TrimSpace(p.SetupClientTokenEndpointAuthMethod)
	case p.ClientID != "" && setupClientID == p.ClientID:
		m = strings.TrimSpace(p.ClientTokenEndpointAuthMethod)
	}
	if m == "client_secret_basic" {
		return ""
	}
	return m
}

// ErrNoSite is returned (wrapped) by [LoadSite] when the file does not exist
// or holds no oxd_id. The message names the fix: call [EnsureSite] with
// that path at startup.
var ErrNoSite = errors.New("oxdclient: no site registered yet")

// noSiteFix is appended to ErrNoSite errors.
func noSiteFix(path string) string {
	return fmt.Sprintf("call oxdclient.EnsureSite(ctx, client, %q, params) once at startup, before serving: it registers the site with oxd (setup_client) and writes this file", path)
}

// LoadSite reads a site file written by [SaveSite]. A missing file, or one
// whose oxd_id is empty (like the oxd-node demo's initial settings.json),
// gives [ErrNoSite]; a file that is not valid JSON is an error of its own,
// so that a damaged file is never silently replaced by a new registration.
func LoadSite(path string) (*Site, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist; %s", ErrNoSite, path, noSiteFix(path))
	}
	if err != nil {
		return nil, fmt.Errorf("oxdclient: reading site file: %w", err)
	}
	var s Site
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("oxdclient: site file %s is not valid JSON (fix or remove it): %w", path, errSiteSyntax(err))
	}
	if s.OxdID == "" {
		return nil, fmt.Errorf("%w: %s has no oxd_id; %s", ErrNoSite, path, noSiteFix(path))
	}
	return &s, nil
}

// errSiteSyntax keeps the position of a JSON error but not the text around
// it (which could be a secret).
func errSiteSyntax(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q has the wrong type", te.Field)
	}
	return errors.New("malformed")
}

// SaveSite writes s to path atomically (a temporary file in the same
// directory, synced, then renamed over path) with permissions 0600, since
// it holds the setup client's secret.
func SaveSite(path string, s *Site) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("oxdclient: encoding site: %w", err)
	}
	b = append(b, '\n')
	if err := atomicfile.Write(path, b); err != nil {
		return fmt.Errorf("oxdclient: writing site file: %w", err)
	}
	return nil
}

// EnsureSite performs the one-time setup of an application with oxd and
// keeps its result in the file at path, so that the next start reuses it:
//
//   - if path holds a site with an oxd_id that still matches (see below),
//     it is returned;
//   - otherwise setup_client runs with p, and its answer is written to path
//     (atomically, mode 0600) and returned.
//
// Either way EnsureSite then installs the site's protection credentials
// (the setup client's, [Site.ProtectionCredentials]) on c, so that every
// later command carries a protection access token. This is the one way to
// give a client protection credentials that works on a first run, when
// the site does not exist yet: create the client without them, call
// EnsureSite, serve. A client given its own [Config.TokenSource] (or
// [Client.SetTokenSource]) keeps it.
//
//	client := oxdclient.New(transport, oxdclient.Config{})
//	site, err := oxdclient.EnsureSite(ctx, client, "oxd-site.json", oxdclient.SetupClientParams{
//		SiteParams: oxdclient.SiteParams{
//			OPHost:                   "https://op.example.com",
//			AuthorizationRedirectURI: "https://app.example.com/callback",
//			PostLogoutRedirectURI:    "https://app.example.com/logged-out",
//			Scope:                    []string{"openid", "profile", "email"},
//		},
//	})
//
// A site file is stale when it no longer describes what p asks for: its
// op_host, op_discovery_path, authorization or post-logout redirect URI
// differs from a non-empty parameter, or oxd does not know its oxd_id, or
// oxd holds the site with another op_host or redirect URIs (also a
// redirect URI of p.RedirectURIs that oxd lacks). oxd is asked with get_rp;
// where get_rp is not available (the oxd-https-extension, oxd-server
// before 3.1.4) or oxd cannot be reached, only the file is compared, and
// the site is returned. A stale file gives a [*SiteMismatchError] naming
// the file and the fix (delete it and restart), and nothing is
// registered; with the option [ReRegisterOnMismatch], setup_client runs
// again and the file is replaced. The typical cause in development: the
// development OP of cmd/oxd-server -dev-op came back on another port, or
// forgot its clients, or oxd's store was reset.
//
// A file that exists but is not valid JSON is an error (nothing is
// registered): fix or remove it.
//
// Call it once at startup, before serving; it is not meant for concurrent
// use on one path.
func EnsureSite(ctx context.Context, c *Client, path string, p SetupClientParams, opts ...SiteOption) (*Site, error) {
	if p.SetupClientID != "" && secretlessMethod(p.SetupClientTokenEndpointAuthMethod) {
		return nil, fmt.Errorf("%w: setup_client_token_endpoint_auth_method %s (register the protection client at the OP with client_secret_basic, client_secret_post or client_secret_jwt and pass SetupClientSecret)",
			ErrProtectionNeedsSecret, strings.TrimSpace(p.SetupClientTokenEndpointAuthMethod))
	}
	s, err := ensureExisting(ctx, c, path, p.SiteParams, opts)
	if err != nil {
		return nil, err
	}
	if s != nil && s.ClientAuthenticationMethod == "" && s.Command == CmdSetupClient {
		// A file written before the method was recorded: take it from p
		// when p names the same setup client.
		if m := setupClientMethod(p, s.ClientID); m != "" {
			s.ClientAuthenticationMethod = m
			if err := SaveSite(path, s); err != nil {
				return nil, err
			}
		}
	}
	if s == nil {
		r, err := c.SetupClient(ctx, p)
		if err != nil {
			return nil, err
		}
		if r.OxdID == "" {
			return nil, transportErr(CmdSetupClient, ErrProtocol, errors.New("setup_client answered no oxd_id"), true)
		}
		s = &Site{
			OxdID:                         r.OxdID,
			OPHost:                        firstNonEmpty(r.OPHost, p.OPHost),
			OPDiscoveryPath:               p.OPDiscoveryPath,
			AuthorizationRedirectURI:      p.AuthorizationRedirectURI,
			PostLogoutRedirectURI:         p.PostLogoutRedirectURI,
			ClientIDOfOxdID:               r.ClientIDOfOxdID,
			SetupClientOxdID:              r.SetupClientOxdID,
			ClientID:                      r.ClientID,
			ClientSecret:                  r.ClientSecret,
			ClientRegistrationAccessToken: r.ClientRegistrationAccessToken,
			ClientRegistrationClientURI:   r.ClientRegistrationClientURI,
			ClientIDIssuedAt:              r.ClientIDIssuedAt,
			ClientSecretExpiresAt:         r.ClientSecretExpiresAt,
			ClientAuthenticationMethod:    setupClientMethod(p, r.ClientID),
			Command:                       CmdSetupClient,
		}
		if err := SaveSite(path, s); err != nil {
			return nil, fmt.Errorf("%w (oxd_id %s was registered but could not be saved)", err, s.OxdID)
		}
	}
	c.useSiteProtection(s)
	return s, nil
}

// EnsureRegisteredSite is [EnsureSite] with register_site instead of
// setup_client: one client, no setup client (enough for an oxd-server that
// does not enforce protection tokens). When the client has a token source,
// register_site carries a protection token, and the new site is linked to
// that token's setup client. A stale file is detected as by EnsureSite.
// The client's protection credentials are left as they are.
func EnsureRegisteredSite(ctx context.Context, c *Client, path string, p RegisterSiteParams, opts ...SiteOption) (*Site, error) {
	s, err := ensureExisting(ctx, c, path, p.SiteParams, opts)
	if err != nil || s != nil {
		return s, err
	}
	r, err := c.RegisterSite(ctx, p)
	if err != nil {
		return nil, err
	}
	if r.OxdID == "" {
		return nil, transportErr(CmdRegisterSite, ErrProtocol, errors.New("register_site answered no oxd_id"), true)
	}
	s = &Site{
		OxdID:                    r.OxdID,
		OPHost:                   firstNonEmpty(r.OPHost, p.OPHost),
		OPDiscoveryPath:          p.OPDiscoveryPath,
		AuthorizationRedirectURI: p.AuthorizationRedirectURI,
		PostLogoutRedirectURI:    p.PostLogoutRedirectURI,
		Command:                  CmdRegisterSite,
	}
	if err := SaveSite(path, s); err != nil {
		return nil, fmt.Errorf("%w (oxd_id %s was registered but could not be saved)", err, s.OxdID)
	}
	return s, nil
}

// SiteOption changes what [EnsureSite] and [EnsureRegisteredSite] do.
type SiteOption func(*siteOptions)

type siteOptions struct{ reRegister bool }

// ReRegisterOnMismatch makes EnsureSite (and EnsureRegisteredSite)
// register the site again and replace the file when the file is stale,
// instead of returning a [*SiteMismatchError]. The old site is not removed
// from oxd or the OP. Meant for development, where the development OP
// forgets its clients on restart.
func ReRegisterOnMismatch() SiteOption { return func(o *siteOptions) { o.reRegister = true } }

// ErrSiteMismatch is wrapped by every [*SiteMismatchError].
var ErrSiteMismatch = errors.New("oxdclient: site file is stale")

// SiteMismatchError says why a site file no longer matches and what to
// do. Field is the first mismatch found: "oxd_id" (oxd does not know the
// site; Err is oxd's invalid_oxd_id answer), "op_host",
// "op_discovery_path", "authorization_redirect_uri",
// "post_logout_redirect_uri" or "redirect_uris". Have is the value in the
// file (Source "site file") or at oxd (Source "oxd"); Want is the
// parameter's.
type SiteMismatchError struct {
	Path, OxdID       string
	Field, Have, Want string
	Source            string
	Err               error
}

func (e *SiteMismatchError) Error() string {
	fix := fmt.Sprintf("delete %s and restart to register the site again, or pass oxdclient.ReRegisterOnMismatch() to EnsureSite to do so automatically", e.Path)
	if e.Field == "oxd_id" {
		return fmt.Sprintf("oxdclient: site file %s is stale: oxd does not know its oxd_id %s (oxd's store was reset, or this is another oxd); %s", e.Path, e.OxdID, fix)
	}
	if e.Field == "redirect_uris" {
		return fmt.Sprintf("oxdclient: site file %s is stale: redirect_uris of the parameters has %q, which is not registered at %s (it has %s); %s", e.Path, e.Want, e.Source, e.Have, fix)
	}
	return fmt.Sprintf("oxdclient: site file %s is stale: %s is %q in the %s but %q in the parameters; %s", e.Path, e.Field, e.Have, e.Source, e.Want, fix)
}

// Unwrap returns ErrSiteMismatch and, for an unknown oxd_id, oxd's error.
func (e *SiteMismatchError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrSiteMismatch}
	}
	return []error{ErrSiteMismatch, e.Err}
}

// ensureExisting returns the site of path when it exists and matches p,
// nil when a registration is due (no site, or a stale one with
// ReRegisterOnMismatch), or an error.
func ensureExisting(ctx context.Context, c *Client, path string, p SiteParams, opts []SiteOption) (*Site, error) {
	var o siteOptions
	for _, opt := range opts {
		opt(&o)
	}
	s, err := LoadSite(path)
	if errors.Is(err, ErrNoSite) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := checkSite(ctx, c, path, s, p); err != nil {
		if o.reRegister && errors.Is(err, ErrSiteMismatch) {
			if c.logger != nil {
				c.logger.LogAttrs(ctx, slog.LevelWarn, "oxd site file is stale; registering the site again",
					slog.String("path", path), slog.String("error", err.Error()))
			}
			return nil, nil
		}
		return nil, err
	}
	return s, nil
}

// checkSite compares the file's site with p, then with what oxd holds.
func checkSite(ctx context.Context, c *Client, path string, s *Site, p SiteParams) error {
	mismatch := func(field, have, want, source string) error {
		return &SiteMismatchError{Path: path, OxdID: s.OxdID, Field: field, Have: have, Want: want, Source: source}
	}
	type pair struct{ field, have, want string }
	compare := func(source string, pairs []pair) error {
		for _, x := range pairs {
			if x.want != "" && x.have != "" && x.have != x.want {
				return mismatch(x.field, x.have, x.want, source)
			}
		}
		return nil
	}
	if err := compare("site file", []pair{
		{"op_host", trimSlash(s.OPHost), trimSlash(p.OPHost)},
		{"op_discovery_path", s.OPDiscoveryPath, p.OPDiscoveryPath},
		{"authorization_redirect_uri", s.AuthorizationRedirectURI, p.AuthorizationRedirectURI},
		{"post_logout_redirect_uri", s.PostLogoutRedirectURI, p.PostLogoutRedirectURI},
	}); err != nil {
		return err
	}

	r, err := c.GetRP(ctx, GetRPParams{OxdID: s.OxdID})
	if IsInvalidOxdID(err) {
		e := mismatch("oxd_id", s.OxdID, "", "oxd").(*SiteMismatchError)
		e.Err = err
		return e
	}
	if err != nil {
		// get_rp unavailable (HTTPS extension, older oxd-server) or oxd
		// unreachable: the file is all there is to compare.
		if c.logger != nil {
			c.logger.LogAttrs(ctx, slog.LevelDebug, "oxd site file not checked against oxd", slog.String("path", path), slog.String("error", err.Error()))
		}
		return nil
	}
	var node struct {
		OPHost           *string  `json:"op_host"`
		OPDiscoveryPath  *string  `json:"op_discovery_path"`
		AuthorizationURI *string  `json:"authorization_redirect_uri"`
		LogoutURI        *string  `json:"logout_redirect_uri"`
		RedirectURIs     []string `json:"redirect_uris"`
	}
	if json.Unmarshal(r.Node, &node) != nil {
		return nil
	}
	str := func(v *string) string {
		if v == nil {
			return ""
		}
		return *v
	}
	if err := compare("oxd", []pair{
		{"op_host", trimSlash(str(node.OPHost)), trimSlash(p.OPHost)},
		{"op_discovery_path", str(node.OPDiscoveryPath), p.OPDiscoveryPath},
		{"authorization_redirect_uri", str(node.AuthorizationURI), p.AuthorizationRedirectURI},
		{"post_logout_redirect_uri", str(node.LogoutURI), p.PostLogoutRedirectURI},
	}); err != nil {
		return err
	}
	if node.RedirectURIs != nil {
		have := append(node.RedirectURIs, str(node.AuthorizationURI))
		for _, u := range p.RedirectURIs {
			if u != "" && !slices.Contains(have, u) {
				return mismatch("redirect_uris", strings.Join(node.RedirectURIs, " "), u, "oxd")
			}
		}
	}
	return nil
}

func trimSlash(s string) string { return strings.TrimSuffix(s, "/") }

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

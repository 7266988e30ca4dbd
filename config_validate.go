package oxd

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/alexedwards/scs/v2"
	"github.com/oxdgo/oxd/internal/hostutil"
	"github.com/oxdgo/oxd/internal/scopeexpr"
	"github.com/oxdgo/oxd/oxdclient"
)

// The checks New applies to a Config (split out of New), and the session
// cookie's secure defaults.

// validate checks cfg and fills in the defaults; it returns the site's
// oxd_id (read from SiteFile when that is set).
func (cfg *Config) validate() (oxdID string, err error) {
	if oxdID, err = cfg.site(); err != nil {
		return "", err
	}
	if err := cfg.checkURLs(); err != nil {
		return "", err
	}
	if err := cfg.checkAuthorizationParams(); err != nil {
		return "", err
	}
	if err := cfg.checkLimits(); err != nil {
		return "", err
	}
	return oxdID, nil
}

// site returns the oxd_id of OxdID or SiteFile (exactly one is set).
func (cfg *Config) site() (string, error) {
	switch {
	case cfg.OxdID != "" && cfg.SiteFile != "":
		return "", errors.New("oxd: Config: set OxdID or SiteFile, not both")
	case cfg.OxdID != "":
		return cfg.OxdID, nil
	case cfg.SiteFile != "":
		return readOxdIDFile(cfg.SiteFile)
	default:
		return "", errors.New("oxd: Config: OxdID (or SiteFile) is required")
	}
}

// checkURLs checks PostLogoutRedirectURI, RedirectURL, DefaultReturnTo and
// Realm, and sets the defaults of the last two.
func (cfg *Config) checkURLs() error {
	if cfg.PostLogoutRedirectURI != "" {
		if _, err := absoluteHTTPURL(cfg.PostLogoutRedirectURI); err != nil {
			return fmt.Errorf("oxd: Config.PostLogoutRedirectURI: %w", err)
		}
	}
	if cfg.LogoutAllSessions && cfg.SessionIndex == nil {
		return errors.New("oxd: Config.LogoutAllSessions needs a SessionIndex")
	}
	if cfg.RedirectURL != "" {
		u, err := absoluteHTTPURL(cfg.RedirectURL)
		if err != nil {
			return fmt.Errorf("oxd: Config.RedirectURL: %w", err)
		}
		if u.Scheme == "http" && !cfg.InsecureCookies && !hostutil.BrowserSecureContext(u.Hostname()) {
			return errors.New("oxd: Config.RedirectURL is plain http on a non-loopback host: the Secure session cookie would not come back to the callback; use https or set InsecureCookies for development")
		}
		if cfg.Realm == "" {
			cfg.Realm = u.Host
		}
	}
	if cfg.Realm == "" {
		cfg.Realm = "oxd"
	}
	if strings.ContainsAny(cfg.Realm, "\"\\\r\n") {
		return errors.New("oxd: Config.Realm must not contain quotes, backslashes or line breaks")
	}
	return nil
}

// checkAuthorizationParams checks (and copies) what goes into the
// authorization request: Scopes, AcrValues, Prompt, CustomParameters.
func (cfg *Config) checkAuthorizationParams() error {
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = slices.Clone(DefaultScopes)
	} else {
		cfg.Scopes = slices.Clone(cfg.Scopes)
	}
	if !slices.Contains(cfg.Scopes, "openid") {
		return errors.New("oxd: Config.Scopes must contain \"openid\"")
	}
	for _, s := range cfg.Scopes {
		if !scopeexpr.ValidScope(s) {
			return fmt.Errorf("oxd: Config.Scopes: invalid scope %q", s)
		}
	}
	cfg.AcrValues = slices.Clone(cfg.AcrValues)
	for _, s := range cfg.AcrValues {
		if !scopeexpr.ValidScope(s) {
			return fmt.Errorf("oxd: Config.AcrValues: invalid value %q", s)
		}
	}
	for p := range strings.FieldsSeq(cfg.Prompt) {
		switch p {
		case "none", "login", "consent", "select_account":
		default:
			return fmt.Errorf("oxd: Config.Prompt: unknown value %q", p)
		}
	}
	if len(cfg.CustomParameters) > 0 {
		m := make(map[string]string, len(cfg.CustomParameters))
		for k, v := range cfg.CustomParameters {
			if k == "" || reservedAuthParams[strings.ToLower(k)] {
				return fmt.Errorf("oxd: Config.CustomParameters: parameter %q is reserved", k)
			}
			m[k] = v
		}
		cfg.CustomParameters = m
	}
	return nil
}

// checkLimits checks DefaultReturnTo, the durations, the limits and
// LogoutMethods, and sets their defaults.
func (cfg *Config) checkLimits() error {
	if cfg.DefaultReturnTo == "" {
		cfg.DefaultReturnTo = DefaultReturnTo
	}
	if _, ok := safeReturnTo(cfg.DefaultReturnTo); !ok {
		return fmt.Errorf("oxd: Config.DefaultReturnTo %q is not a same-origin path", cfg.DefaultReturnTo)
	}
	if cfg.CallTimeout < 0 || cfg.RefreshBefore < 0 || cfg.PendingLoginTTL < 0 || cfg.PendingLoginLimit < 0 {
		return errors.New("oxd: Config: durations and limits must not be negative")
	}
	cfg.CallTimeout = cmp.Or(cfg.CallTimeout, DefaultCallTimeout)
	cfg.RefreshBefore = cmp.Or(cfg.RefreshBefore, DefaultRefreshBefore)
	cfg.PendingLoginTTL = cmp.Or(cfg.PendingLoginTTL, DefaultPendingLoginTTL)
	cfg.PendingLoginLimit = cmp.Or(cfg.PendingLoginLimit, DefaultPendingLoginLimit)
	if len(cfg.LogoutMethods) == 0 {
		cfg.LogoutMethods = []string{http.MethodPost}
	}
	for _, m := range cfg.LogoutMethods {
		if m != http.MethodPost && m != http.MethodGet {
			return fmt.Errorf("oxd: Config.LogoutMethods: %q is not POST or GET", m)
		}
	}
	return nil
}

// secureCookie sets the session cookie's attributes: HttpOnly, Secure
// unless insecure, SameSite=Lax when unset. It refuses SameSite=Strict
// (the cookie would not come back on the OP's redirect to the callback)
// and SameSite=None without Secure.
func secureCookie(c *scs.SessionCookie, insecure bool) error {
	if c.SameSite == http.SameSiteStrictMode {
		return errors.New("oxd: the session cookie has SameSite=Strict: browsers would not send it on the OP's redirect to the callback; use Lax")
	}
	if c.SameSite == http.SameSiteNoneMode && insecure {
		return errors.New("oxd: SameSite=None requires a Secure cookie; do not combine it with InsecureCookies")
	}
	if c.SameSite == 0 || c.SameSite == http.SameSiteDefaultMode {
		c.SameSite = http.SameSiteLaxMode
	}
	c.HttpOnly = true
	c.Secure = !insecure
	if c.Name == "" {
		return errors.New("oxd: the session manager has no cookie name (create it with scs.New)")
	}
	return nil
}

// reservedAuthParams are authorization-request parameters that the
// protocol (oxd, the OP) owns.
var reservedAuthParams = map[string]bool{
	"state": true, "nonce": true, "redirect_uri": true, "client_id": true,
	"response_type": true, "response_mode": true, "scope": true,
	"code_challenge": true, "code_challenge_method": true, "request": true,
	"request_uri": true, "acr_values": true, "prompt": true,
}

func absoluteHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, errors.New("must be an absolute http(s) URL without userinfo or fragment")
	}
	return u, nil
}

// readOxdIDFile reads the oxd_id of a site file written by
// oxdclient.SaveSite (or EnsureSite).
func readOxdIDFile(path string) (string, error) {
	site, err := oxdclient.LoadSite(path)
	if err != nil {
		return "", fmt.Errorf("oxd: Config.SiteFile: %w", err)
	}
	return site.OxdID, nil
}

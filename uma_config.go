package oxd

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults of [UMAConfig].
const (
	DefaultUMAMaxGrantTTL = time.Minute
	DefaultUMAMaxGrants   = 10000
)

// UMAWarning is the Warning header value of a 403 answer when no
// permission ticket could be obtained (UMA 2.0 Grant §3.2.2).
const UMAWarning = `199 - "UMA Authorization Server Unreachable"`

// UMAClaimTokenFormatIDToken is the claim token format of an OpenID Connect
// ID token (UMA 2.0 Grant §3.3.1), used with [UMAConfig.PushIDToken].
const UMAClaimTokenFormatIDToken = "http://openid.net/specs/openid-connect-core-1_0.html#IDToken"

// UMAConfig configures UMA protection; it is [Config].UMA. The zero
// value is usable: the issuer is read from oxd, the realm is Config.Realm,
// grants are cached for at most a minute, browser mode is off.
type UMAConfig struct {
	// Issuer is the AS issuer URI sent as as_uri in challenges (UMA Grant
	// §3.2.1): the issuer of the OP's /.well-known/uma2-configuration.
	// Default: the site's op_host as stored by oxd (get_rp), read once by
	// RegisterUMA or by the first challenge. Must be an absolute http(s)
	// URL without query or fragment.
	Issuer string

	// Realm is the realm of the UMA challenge. Default: Config.Realm.
	// Printable ASCII.
	Realm string

	// MaxGrantTTL bounds how long a grant is cached. A cached grant is
	// used until min(the RPT's expiry from introspection − 5s,
	// grant time + MaxGrantTTL), so a revoked RPT keeps working at most
	// that long. Default [DefaultUMAMaxGrantTTL]; negative disables the
	// cache (every request asks oxd).
	MaxGrantTTL time.Duration

	// MaxGrants bounds the number of cached grants (and of RPT expiries
	// remembered). Default [DefaultUMAMaxGrants].
	MaxGrants int

	// Browser turns browser RP mode on for every UMA route (it can be
	// turned on per route with UMARule.Browser). In browser mode, a
	// logged-in user's browser navigation without an Authorization header
	// is not answered with a challenge: the middleware obtains an RPT for
	// the user (uma_rp_get_rpt), sends the browser through claims
	// gathering when the AS needs more information, keeps the RPT in the
	// user's session and presents it on the user's later requests.
	Browser bool

	// ClaimsRedirectURL is the absolute URL where ClaimsCallbackHandler is
	// mounted; it must be registered at the OP as a claims_redirect_uri of
	// the site. Required for claims gathering in browser mode. oxd-server
	// 3.1.4 does not URL-encode it, so it must need no encoding: no query,
	// no fragment, and only letters, digits and - . _ ~ : / characters.
	ClaimsRedirectURL string

	// FingerprintFile, when set, is a file where RegisterUMA records a
	// fingerprint of the registered resources. It is only read when oxd
	// cannot tell which resources it protects (no get_rp, as with the
	// oxd-https-extension): an unchanged fingerprint then avoids an
	// overwrite, which would invalidate the RPTs issued so far.
	FingerprintFile string

	// PushIDToken, in browser mode, sends the user's ID token (while it
	// is valid) to the AS as a claim token with the RPT request, so that
	// policies needing the user's claims can decide without claims
	// gathering. The AS must be the OP that issued it.
	PushIDToken bool
}

// umaSettings is the validated form of UMAConfig.
type umaSettings struct {
	issuer          string
	realm           string
	maxTTL          time.Duration // <0: no cache
	maxGrants       int
	browser         bool
	claimsRedirect  string
	pushIDToken     bool
	fingerprintFile string
}

// newUMASettings validates cfg; realm is Config.Realm, the default of
// the UMA realm.
func newUMASettings(cfg UMAConfig, realm string) (*umaSettings, error) {
	s := &umaSettings{
		realm:           cmp.Or(cfg.Realm, realm, "oxd"),
		maxTTL:          cfg.MaxGrantTTL,
		maxGrants:       cfg.MaxGrants,
		browser:         cfg.Browser,
		claimsRedirect:  cfg.ClaimsRedirectURL,
		pushIDToken:     cfg.PushIDToken,
		fingerprintFile: cfg.FingerprintFile,
	}
	if cfg.Issuer != "" {
		if err := checkIssuer(cfg.Issuer); err != nil {
			return nil, fmt.Errorf("oxd: Config.UMA.Issuer: %w", err)
		}
		s.issuer = cfg.Issuer
	}
	if _, err := quoteString(s.realm); err != nil || strings.ContainsAny(s.realm, `"\`) {
		return nil, errors.New("oxd: Config.UMA.Realm must be printable ASCII without quotes or backslashes")
	}
	if s.maxTTL == 0 {
		s.maxTTL = DefaultUMAMaxGrantTTL
	}
	if s.maxGrants < 0 {
		return nil, errors.New("oxd: Config.UMA.MaxGrants must not be negative")
	}
	if s.maxGrants == 0 {
		s.maxGrants = DefaultUMAMaxGrants
	}
	if s.claimsRedirect != "" {
		if err := checkClaimsRedirectURL(s.claimsRedirect); err != nil {
			return nil, fmt.Errorf("oxd: Config.UMA.ClaimsRedirectURL: %w", err)
		}
	}
	return s, nil
}

// checkIssuer accepts an absolute http(s) URL without query, fragment or
// userinfo, made of characters a quoted-string carries unescaped.
func checkIssuer(s string) error {
	u, err := absoluteHTTPURL(s)
	if err != nil {
		return err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return errors.New("must not have a query")
	}
	if strings.ContainsAny(s, "\"\\") {
		return errors.New("must not contain quotes or backslashes")
	}
	if _, err := quoteString(s); err != nil {
		return err
	}
	return nil
}

// checkClaimsRedirectURL enforces a claims redirect URI that oxd-server
// 3.1.4 can concatenate into the claims-gathering URL without encoding
// (anchors-uma §3: "claims_redirect_uri is not URL-encoded").
func checkClaimsRedirectURL(s string) error {
	u, err := absoluteHTTPURL(s)
	if err != nil {
		return err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return errors.New("must not have a query (oxd does not URL-encode it)")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == ':', c == '/':
		default:
			return fmt.Errorf("character %q would need URL-encoding, which oxd does not do", c)
		}
	}
	return nil
}

package oxdclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Command names of oxd-server 3.1.4 (socket protocol). The HTTPS extension
// uses the same names with "_" replaced by "-" as the URL path.
const (
	CmdSetupClient                  = "setup_client"
	CmdRegisterSite                 = "register_site"
	CmdUpdateSite                   = "update_site"
	CmdRemoveSite                   = "remove_site"
	CmdGetAuthorizationURL          = "get_authorization_url"
	CmdGetTokensByCode              = "get_tokens_by_code"
	CmdGetAccessTokenByRefreshToken = "get_access_token_by_refresh_token"
	CmdGetUserInfo                  = "get_user_info"
	CmdGetLogoutURI                 = "get_logout_uri"
	CmdGetClientToken               = "get_client_token"
	CmdIntrospectAccessToken        = "introspect_access_token"
	CmdIntrospectRPT                = "introspect_rpt"
	CmdUMARSProtect                 = "uma_rs_protect"
	CmdUMARSCheckAccess             = "uma_rs_check_access"
	CmdUMARPGetRPT                  = "uma_rp_get_rpt"
	CmdUMARPGetClaimsGatheringURL   = "uma_rp_get_claims_gathering_url"
	CmdGetRP                        = "get_rp"
	// CmdRevokeToken is an extension, not in oxd 3.1.4: RFC 7009 token
	// revocation at the OP's revocation_endpoint (HTTPS extension path
	// /revoke-token).
	CmdRevokeToken = "revoke_token"
	// CmdGetClientJWKS is an extension, not in oxd 3.1.4: the public JWKS
	// of a private_key_jwt site's client (HTTPS extension path
	// /get-client-jwks).
	CmdGetClientJWKS = "get_client_jwks"
)

// Protection carries the protection_access_token of a PAT-protected command.
// It is embedded in every params type whose command oxd protects. The
// [Client] fills it from its token source when it is empty.
type Protection struct {
	ProtectionAccessToken Secret `json:"protection_access_token,omitempty"`
}

func (p *Protection) protection() *Protection { return p }

// protected is implemented by params of PAT-protected commands.
type protected interface{ protection() *Protection }

// SiteParams are the client-registration parameters shared by setup_client
// and register_site.
type SiteParams struct {
	OPHost                            string   `json:"op_host,omitempty"`
	OPDiscoveryPath                   string   `json:"op_discovery_path,omitempty"`
	AuthorizationRedirectURI          string   `json:"authorization_redirect_uri,omitempty"`
	PostLogoutRedirectURI             string   `json:"post_logout_redirect_uri,omitempty"`
	RedirectURIs                      []string `json:"redirect_uris,omitempty"`
	ResponseTypes                     []string `json:"response_types,omitempty"`
	ClaimsRedirectURI                 []string `json:"claims_redirect_uri,omitempty"`
	ClientID                          string   `json:"client_id,omitempty"`
	ClientSecret                      Secret   `json:"client_secret,omitempty"`
	ClientRegistrationAccessToken     Secret   `json:"client_registration_access_token,omitempty"`
	ClientRegistrationClientURI       string   `json:"client_registration_client_uri,omitempty"`
	ClientName                        string   `json:"client_name,omitempty"`
	ClientJWKSURI                     string   `json:"client_jwks_uri,omitempty"`
	ClientTokenEndpointAuthMethod     string   `json:"client_token_endpoint_auth_method,omitempty"`
	ClientTokenEndpointAuthSigningAlg string   `json:"client_token_endpoint_auth_signing_alg,omitempty"`
	ClientRequestURIs                 []string `json:"client_request_uris,omitempty"`
	ClientFrontchannelLogoutURIs      []string `json:"client_frontchannel_logout_uris,omitempty"`
	// ClientBackchannelLogoutURI is an extension of this module's engine
	// (oxd 3.1.4 ignores it): registered at the OP as
	// backchannel_logout_uri with backchannel_logout_session_required.
	ClientBackchannelLogoutURI string   `json:"client_backchannel_logout_uri,omitempty"`
	ClientSectorIdentifierURI  string   `json:"client_sector_identifier_uri,omitempty"`
	Scope                      []string `json:"scope,omitempty"`
	UILocales                  []string `json:"ui_locales,omitempty"`
	ClaimsLocales              []string `json:"claims_locales,omitempty"`
	AcrValues                  []string `json:"acr_values,omitempty"`
	GrantTypes                 []string `json:"grant_types,omitempty"`
	Contacts                   []string `json:"contacts,omitempty"`
	TrustedClient              bool     `json:"trusted_client,omitempty"`
	OxdRPProgrammingLanguage   string   `json:"oxd_rp_programming_language,omitempty"`
}

// SetupClientParams are the parameters of setup_client (3.1.x): register a
// setup (protection) client and a regular client in one call.
type SetupClientParams struct {
	SiteParams
	SetupClientName string `json:"setup_client_name,omitempty"`
	// Extension (not in oxd 3.1.4), for OPs without dynamic registration:
	// the pre-registered protection (setup) client. The regular client's
	// pre-registered credentials are SiteParams.ClientID, ClientSecret and
	// ClientTokenEndpointAuthMethod. When only those are given and the OP
	// has no registration endpoint, that one client plays both roles.
	SetupClientID                      string `json:"setup_client_id,omitempty"`
	SetupClientSecret                  Secret `json:"setup_client_secret,omitempty"`
	SetupClientTokenEndpointAuthMethod string `json:"setup_client_token_endpoint_auth_method,omitempty"`
}

// SetupClientResponse is the answer of setup_client. ClientID, ClientSecret
// and the registration fields belong to the setup client (use them with
// get_client_token); OxdID and ClientIDOfOxdID identify the regular client.
type SetupClientResponse struct {
	OxdID                         string `json:"oxd_id"`
	ClientIDOfOxdID               string `json:"client_id_of_oxd_id"`
	OPHost                        string `json:"op_host"`
	SetupClientOxdID              string `json:"setup_client_oxd_id"`
	ClientID                      string `json:"client_id"`
	ClientSecret                  Secret `json:"client_secret"`
	ClientRegistrationAccessToken Secret `json:"client_registration_access_token"`
	ClientRegistrationClientURI   string `json:"client_registration_client_uri"`
	ClientIDIssuedAt              int64  `json:"client_id_issued_at"`      // epoch seconds
	ClientSecretExpiresAt         int64  `json:"client_secret_expires_at"` // epoch seconds, 0 = never
}

// RegisterSiteParams are the parameters of register_site.
type RegisterSiteParams struct {
	SiteParams
	Protection
}

// RegisterSiteResponse is the answer of register_site.
type RegisterSiteResponse struct {
	OxdID  string `json:"oxd_id"`
	OPHost string `json:"op_host"`
}

// UpdateSiteParams are the parameters of update_site (3.1.2+).
type UpdateSiteParams struct {
	OxdID                         string   `json:"oxd_id"`
	AuthorizationRedirectURI      string   `json:"authorization_redirect_uri,omitempty"`
	PostLogoutRedirectURI         string   `json:"post_logout_redirect_uri,omitempty"`
	RedirectURIs                  []string `json:"redirect_uris,omitempty"`
	ResponseTypes                 []string `json:"response_types,omitempty"`
	ClientID                      string   `json:"client_id,omitempty"`
	ClientSecret                  Secret   `json:"client_secret,omitempty"`
	ClientJWKSURI                 string   `json:"client_jwks_uri,omitempty"`
	ClientSectorIdentifierURI     string   `json:"client_sector_identifier_uri,omitempty"`
	ClientTokenEndpointAuthMethod string   `json:"client_token_endpoint_auth_method,omitempty"`
	ClientRequestURIs             []string `json:"client_request_uris,omitempty"`
	ClientLogoutURIs              []string `json:"client_logout_uris,omitempty"`
	// ClientBackchannelLogoutURI: see SiteParams (an extension).
	ClientBackchannelLogoutURI string   `json:"client_backchannel_logout_uri,omitempty"`
	Scope                      []string `json:"scope,omitempty"`
	UILocales                  []string `json:"ui_locales,omitempty"`
	ClaimsLocales              []string `json:"claims_locales,omitempty"`
	AcrValues                  []string `json:"acr_values,omitempty"`
	GrantTypes                 []string `json:"grant_types,omitempty"`
	Contacts                   []string `json:"contacts,omitempty"`
	Protection
}

// OxdIDResponse is the answer of update_site, remove_site and uma_rs_protect.
type OxdIDResponse struct {
	OxdID string `json:"oxd_id"`
}

// RemoveSiteParams are the parameters of remove_site.
type RemoveSiteParams struct {
	OxdID string `json:"oxd_id"`
	Protection
}

// GetAuthorizationURLParams are the parameters of get_authorization_url.
type GetAuthorizationURLParams struct {
	OxdID            string            `json:"oxd_id"`
	Scope            []string          `json:"scope,omitempty"`
	AcrValues        []string          `json:"acr_values,omitempty"`
	Prompt           string            `json:"prompt,omitempty"`
	HD               string            `json:"hd,omitempty"`
	CustomParameters map[string]string `json:"custom_parameters,omitempty"`
	Protection
}

// GetAuthorizationURLResponse is the answer of get_authorization_url.
type GetAuthorizationURLResponse struct {
	AuthorizationURL string `json:"authorization_url"`
}

// GetTokensByCodeParams are the parameters of get_tokens_by_code.
type GetTokensByCodeParams struct {
	OxdID string `json:"oxd_id"`
	Code  Secret `json:"code"`
	State string `json:"state"`
	// Iss relays the authorization response's iss parameter (RFC 9207),
	// an extension of this project's engine (oxdserver): nil when the
	// caller does not relay it (no check), a pointer to "" when the
	// response had none. The engine then refuses, before exchanging the
	// code, an iss other than the OP's issuer, and a missing one when the
	// OP's discovery says authorization_response_iss_parameter_supported
	// (error CodeIssuerMismatch). Other oxd servers ignore it.
	Iss *string `json:"iss,omitempty"`
	Protection
}

// GetTokensByCodeResponse is the answer of get_tokens_by_code. ExpiresIn is
// -1 when the OP sent none.
type GetTokensByCodeResponse struct {
	AccessToken   Secret `json:"access_token"`
	ExpiresIn     int64  `json:"expires_in"`
	IDToken       Secret `json:"id_token"`
	RefreshToken  Secret `json:"refresh_token"`
	IDTokenClaims Claims `json:"id_token_claims"`
}

// GetAccessTokenByRefreshTokenParams are the parameters of
// get_access_token_by_refresh_token.
type GetAccessTokenByRefreshTokenParams struct {
	OxdID        string   `json:"oxd_id"`
	RefreshToken Secret   `json:"refresh_token"`
	Scope        []string `json:"scope,omitempty"`
	Protection
}

// TokenResponse is the answer of get_access_token_by_refresh_token and
// get_client_token. Scope is space-separated.
type TokenResponse struct {
	AccessToken  Secret `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken Secret `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// GetUserInfoParams are the parameters of get_user_info.
type GetUserInfoParams struct {
	OxdID       string `json:"oxd_id"`
	AccessToken Secret `json:"access_token"`
	Protection
}

// GetUserInfoResponse is the answer of get_user_info.
type GetUserInfoResponse struct {
	Claims Claims `json:"claims"`
	// RefreshToken and AccessToken are always null in 3.1.x.
	RefreshToken Secret `json:"refresh_token"`
	AccessToken  Secret `json:"access_token"`
}

// GetLogoutURIParams are the parameters of get_logout_uri.
type GetLogoutURIParams struct {
	OxdID                 string `json:"oxd_id"`
	IDTokenHint           Secret `json:"id_token_hint,omitempty"`
	PostLogoutRedirectURI string `json:"post_logout_redirect_uri,omitempty"`
	State                 string `json:"state,omitempty"`
	SessionState          string `json:"session_state,omitempty"`
	Protection
}

// GetLogoutURIResponse is the answer of get_logout_uri.
type GetLogoutURIResponse struct {
	URI string `json:"uri"`
}

// GetClientTokenParams are the parameters of get_client_token (never
// PAT-protected).
type GetClientTokenParams struct {
	ClientID             string   `json:"client_id"`
	ClientSecret         Secret   `json:"client_secret,omitempty"`
	OPHost               string   `json:"op_host"`
	OPDiscoveryPath      string   `json:"op_discovery_path,omitempty"`
	Scope                []string `json:"scope,omitempty"`
	AuthenticationMethod string   `json:"authentication_method,omitempty"`
	Algorithm            string   `json:"algorithm,omitempty"`
	KeyID                string   `json:"key_id,omitempty"`
}

// IntrospectAccessTokenParams are the parameters of introspect_access_token.
type IntrospectAccessTokenParams struct {
	OxdID       string `json:"oxd_id"`
	AccessToken Secret `json:"access_token"`
	Protection
}

// IntrospectAccessTokenResponse is the answer of introspect_access_token.
type IntrospectAccessTokenResponse struct {
	Active    bool       `json:"active"`
	Scopes    StringList `json:"scopes"` // deprecated alias of Scope
	ClientID  string     `json:"client_id"`
	Username  string     `json:"username"`
	TokenType string     `json:"token_type"`
	Exp       int64      `json:"exp"`
	Iat       int64      `json:"iat"`
	Sub       string     `json:"sub"`
	Aud       StringList `json:"aud"`
	Iss       string     `json:"iss"`
	JTI       string     `json:"jti"`
	AcrValues string     `json:"acr_values"`
	Scope     StringList `json:"scope"`
}

// RevokeTokenParams are the parameters of revoke_token (an extension, not
// in oxd 3.1.4): revoke a token of the site's client at the OP (RFC 7009).
type RevokeTokenParams struct {
	OxdID string `json:"oxd_id"`
	Token Secret `json:"token"`
	// TokenTypeHint is "refresh_token" or "access_token" (optional).
	TokenTypeHint string `json:"token_type_hint,omitempty"`
	Protection
}

// RevokeTokenResponse is the answer of revoke_token: the OP accepted the
// revocation (RFC 7009 §2.2: also for a token that was already invalid).
type RevokeTokenResponse struct {
	OxdID string `json:"oxd_id"`
}

// GetClientJWKSParams are the parameters of get_client_jwks (an extension,
// not in oxd 3.1.4).
type GetClientJWKSParams struct {
	OxdID string `json:"oxd_id"`
	Protection
}

// GetClientJWKSResponse is the answer of get_client_jwks: the public JWKS
// ({"keys":[…]}) the OP needs to verify the client assertions of a
// private_key_jwt site, including a key published ahead of its use after
// a rotation and superseded keys in their grace period. It never holds a
// private key.
type GetClientJWKSResponse struct {
	OxdID string          `json:"oxd_id"`
	JWKS  json.RawMessage `json:"jwks"`
}

// IntrospectRPTParams are the parameters of introspect_rpt.
type IntrospectRPTParams struct {
	OxdID string `json:"oxd_id"`
	RPT   Secret `json:"rpt"`
	Protection
}

// IntrospectRPTResponse is the answer of introspect_rpt.
type IntrospectRPTResponse struct {
	Active      bool            `json:"active"`
	Exp         int64           `json:"exp"`
	Iat         int64           `json:"iat"`
	Nbf         int64           `json:"nbf"`
	Permissions []UMAPermission `json:"permissions"`
	ClientID    string          `json:"client_id"`
	Sub         string          `json:"sub"`
	Aud         StringList      `json:"aud"`
	Iss         string          `json:"iss"`
	JTI         string          `json:"jti"`
}

// UMAPermission is one permission of an introspected RPT.
type UMAPermission struct {
	ResourceID     string   `json:"resource_id"`
	ResourceScopes []string `json:"resource_scopes"`
	Exp            int64    `json:"exp,omitempty"`
}

// UMAResource is one path of uma_rs_protect.
type UMAResource struct {
	Path       string         `json:"path"`
	Conditions []UMACondition `json:"conditions"`
}

// UMACondition protects some HTTP methods of a path with scopes (any one of
// them grants access) or a scope expression. The camelCase keys are oxd's.
type UMACondition struct {
	HTTPMethods     []string            `json:"httpMethods"`
	Scopes          []string            `json:"scopes,omitempty"`
	TicketScopes    []string            `json:"ticketScopes,omitempty"`
	ScopeExpression *UMAScopeExpression `json:"scope_expression,omitempty"`
}

// UMAScopeExpression is a JsonLogic rule over Data (the scopes).
type UMAScopeExpression struct {
	Rule json.RawMessage `json:"rule"`
	Data []string        `json:"data"`
}

// UMARSProtectParams are the parameters of uma_rs_protect.
type UMARSProtectParams struct {
	OxdID     string        `json:"oxd_id"`
	Resources []UMAResource `json:"resources"`
	Overwrite bool          `json:"overwrite,omitempty"`
	Protection
}

// UMARSCheckAccessParams are the parameters of uma_rs_check_access.
type UMARSCheckAccessParams struct {
	OxdID      string `json:"oxd_id"`
	RPT        Secret `json:"rpt"`
	Path       string `json:"path"`
	HTTPMethod string `json:"http_method"`
	Protection
}

// Access values of UMARSCheckAccessResponse.
const (
	AccessGranted = "granted"
	AccessDenied  = "denied"
)

// UMARSCheckAccessResponse is the answer of uma_rs_check_access.
type UMARSCheckAccessResponse struct {
	Access                string `json:"access"`
	WWWAuthenticateHeader string `json:"www-authenticate_header"`
	Ticket                string `json:"ticket"`
}

// UMARPGetRPTParams are the parameters of uma_rp_get_rpt.
type UMARPGetRPTParams struct {
	OxdID            string   `json:"oxd_id"`
	Ticket           string   `json:"ticket"`
	ClaimToken       Secret   `json:"claim_token,omitempty"`
	ClaimTokenFormat string   `json:"claim_token_format,omitempty"`
	PCT              Secret   `json:"pct,omitempty"`
	RPT              Secret   `json:"rpt,omitempty"`
	Scope            []string `json:"scope,omitempty"`
	State            string   `json:"state,omitempty"`
	Protection
}

// UMARPGetRPTResponse is the answer of uma_rp_get_rpt. oxd 3.1.4 sends
// "updated"; documentation and other versions say "upgraded": both are read
// into Updated.
type UMARPGetRPTResponse struct {
	AccessToken Secret `json:"access_token"`
	TokenType   string `json:"token_type"`
	PCT         Secret `json:"pct"`
	Updated     bool   `json:"updated"`
}

// UnmarshalJSON accepts both "updated" and "upgraded".
func (r *UMARPGetRPTResponse) UnmarshalJSON(b []byte) error {
	type plain UMARPGetRPTResponse
	var v struct {
		plain
		Upgraded *bool `json:"upgraded"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = UMARPGetRPTResponse(v.plain)
	if v.Upgraded != nil && *v.Upgraded {
		r.Updated = true
	}
	return nil
}

// UMARPGetClaimsGatheringURLParams are the parameters of
// uma_rp_get_claims_gathering_url.
type UMARPGetClaimsGatheringURLParams struct {
	OxdID             string `json:"oxd_id"`
	Ticket            string `json:"ticket"`
	ClaimsRedirectURI string `json:"claims_redirect_uri"`
	Protection
}

// UMARPGetClaimsGatheringURLResponse is the answer of
// uma_rp_get_claims_gathering_url.
type UMARPGetClaimsGatheringURLResponse struct {
	URL   string `json:"url"`
	State string `json:"state"`
}

// GetRPParams are the parameters of get_rp (3.1.4+): one site by OxdID, or
// all sites with List.
type GetRPParams struct {
	OxdID string `json:"oxd_id,omitempty"`
	List  bool   `json:"list,omitempty"`
	// Protection: a protected oxdserver engine checks get_rp like every
	// command naming a site (3.1.4 did not).
	Protection
}

// GetRPResponse is the answer of get_rp. Node is the stored site (an object)
// or, with List, an array of {oxd_id, client_name}. It may contain the
// client secret and tokens: do not log it.
type GetRPResponse struct {
	Node json.RawMessage `json:"node"`
}

// Sites decodes Node as the list answer of get_rp with List set.
func (r *GetRPResponse) Sites() ([]RPSummary, error) {
	var v []RPSummary
	if err := json.Unmarshal(r.Node, &v); err != nil {
		return nil, fmt.Errorf("oxdclient: get_rp node is not a list: %w", ErrProtocol)
	}
	return v, nil
}

// RPSummary is one entry of the get_rp list.
type RPSummary struct {
	OxdID      string `json:"oxd_id"`
	ClientName string `json:"client_name"`
}

// Claims are the claims of an id_token or of userinfo as oxd sends them:
// 3.x sends every claim as an array of strings ("exp":["1311281970"]); 4.x
// sends the raw JSON values. Claims keeps the raw values; its getters
// accept both shapes.
type Claims map[string]json.RawMessage

// Strings returns the values of claim name as strings: an array's elements,
// or a single scalar. Numbers and booleans are formatted as JSON.
func (c Claims) Strings(name string) []string {
	raw, ok := c[name]
	if !ok {
		return nil
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil
		}
		out := make([]string, 0, len(items))
		for _, it := range items {
			if s, ok := scalarString(it); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if s, ok := scalarString(raw); ok {
		return []string{s}
	}
	return nil
}

// String returns the first value of claim name, or "".
func (c Claims) String(name string) string {
	v := c.Strings(name)
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// Int returns the first value of claim name as an integer (epoch times).
func (c Claims) Int(name string) (int64, bool) {
	s := c.String(name)
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return 0, false
		}
		return int64(f), true
	}
	return n, true
}

func scalarString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}
	if raw[0] == '{' || raw[0] == '[' {
		return string(raw), true
	}
	return string(raw), true
}

// StringList reads a JSON string or array of strings (null = empty), as
// introspection "aud" and "scope" come in either shape.
type StringList []string

// UnmarshalJSON accepts a string (split on spaces), an array or null.
func (l *StringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*l = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = splitSpaces(s)
		return nil
	}
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*l = v
	return nil
}

func splitSpaces(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	return out
}

package oxdserver

import (
	"encoding/json"
	"strconv"
)

// nstr is a string that encodes as null when empty: 3.1.4 answers carry
// every field, null when unset.
type nstr string

func (s nstr) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	// Not HTML-escaped ('&' stays raw, as 3.1.4 writes it): the encoder
	// of the answer does not undo the escapes of a MarshalJSON result.
	return feMarshalJSON(string(s))
}

// nint is an optional integer that encodes as null when unset.
type nint struct {
	v   int64
	set bool
}

func someInt(v int64) nint { return nint{v: v, set: true} }

func (n nint) MarshalJSON() ([]byte, error) {
	if !n.set {
		return []byte("null"), nil
	}
	return strconv.AppendInt(nil, n.v, 10), nil
}

// Answer types. Field order follows the 3.1.4 response classes.

type setupClientAnswer struct {
	OxdID                         nstr `json:"oxd_id"`
	ClientIDOfOxdID               nstr `json:"client_id_of_oxd_id"`
	OPHost                        nstr `json:"op_host"`
	SetupClientOxdID              nstr `json:"setup_client_oxd_id"`
	ClientID                      nstr `json:"client_id"`
	ClientSecret                  nstr `json:"client_secret"`
	ClientRegistrationAccessToken nstr `json:"client_registration_access_token"`
	ClientRegistrationClientURI   nstr `json:"client_registration_client_uri"`
	ClientIDIssuedAt              nint `json:"client_id_issued_at"`
	ClientSecretExpiresAt         nint `json:"client_secret_expires_at"`
}

type registerSiteAnswer struct {
	OxdID  nstr `json:"oxd_id"`
	OPHost nstr `json:"op_host"`
}

type oxdIDAnswer struct {
	OxdID nstr `json:"oxd_id"`
}

type authorizationURLAnswer struct {
	AuthorizationURL nstr `json:"authorization_url"`
}

type tokensByCodeAnswer struct {
	AccessToken   nstr                `json:"access_token"`
	ExpiresIn     int64               `json:"expires_in"`
	IDToken       nstr                `json:"id_token"`
	RefreshToken  nstr                `json:"refresh_token"`
	IDTokenClaims map[string][]string `json:"id_token_claims"`
}

type tokenAnswer struct {
	AccessToken  nstr `json:"access_token"`
	ExpiresIn    nint `json:"expires_in"`
	RefreshToken nstr `json:"refresh_token"`
	Scope        nstr `json:"scope"`
}

type userInfoAnswer struct {
	Claims       map[string][]string `json:"claims"`
	RefreshToken nstr                `json:"refresh_token"`
	AccessToken  nstr                `json:"access_token"`
}

type logoutAnswer struct {
	URI nstr `json:"uri"`
}

type introspectAccessTokenAnswer struct {
	Active    bool            `json:"active"`
	Scopes    []string        `json:"scopes"`
	ClientID  nstr            `json:"client_id"`
	Username  nstr            `json:"username"`
	TokenType nstr            `json:"token_type"`
	Exp       json.RawMessage `json:"exp"`
	Iat       json.RawMessage `json:"iat"`
	Sub       nstr            `json:"sub"`
	Aud       json.RawMessage `json:"aud"`
	Iss       nstr            `json:"iss"`
	JTI       nstr            `json:"jti"`
	AcrValues nstr            `json:"acr_values"`
	Scope     []string        `json:"scope"`
}

type introspectRPTAnswer struct {
	Active      bool            `json:"active"`
	Exp         json.RawMessage `json:"exp"`
	Iat         json.RawMessage `json:"iat"`
	Nbf         json.RawMessage `json:"nbf"`
	Permissions []rptPermission `json:"permissions"`
	ClientID    nstr            `json:"client_id"`
	Sub         nstr            `json:"sub"`
	Aud         json.RawMessage `json:"aud"`
	Iss         nstr            `json:"iss"`
	JTI         nstr            `json:"jti"`
}

type rptPermission struct {
	ResourceID     string          `json:"resource_id"`
	ResourceScopes []string        `json:"resource_scopes"`
	Exp            json.RawMessage `json:"exp"`
}

type checkAccessAnswer struct {
	Access                string `json:"access"`
	WWWAuthenticateHeader nstr   `json:"www-authenticate_header"`
	Ticket                nstr   `json:"ticket"`
}

type rptAnswer struct {
	AccessToken nstr `json:"access_token"`
	TokenType   nstr `json:"token_type"`
	PCT         nstr `json:"pct"`
	Updated     bool `json:"updated"`
}

type claimsGatheringAnswer struct {
	URL   nstr `json:"url"`
	State nstr `json:"state"`
}

type getRPAnswer struct {
	Node any `json:"node"`
}

// rawOrNull returns the raw JSON of a decoded value, or null.
func rawOrNull(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	b, err := feMarshalJSON(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

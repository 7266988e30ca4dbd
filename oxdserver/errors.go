package oxdserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/oxdgo/oxd/oxdclient"
)

// Error descriptions of oxd-server 3.1.4 (reference §3.2), keyed by the
// situation. Several situations share one code.
const (
	descNoParams          = "Command parameters are not specified or otherwise malformed."
	descNoOxdID           = "oxd_id is empty or not specified or is otherwise invalid (not registered)."
	descNoCode            = "'code' is empty or not specified."
	descNoState           = "'state' is empty or not specified."
	descCodeInvalid       = "'code' is invalid."
	descNoIDToken         = "id_token is not returned. Please check whether 'openid' scope is present for 'get_authorization_url' command"
	descNoAccessToken     = "access_token is not returned."
	descInsufficientScope = "protection_access_token does not have oxd scope. Make sure a) scope exists on AS b) setup_client is registered with 'oxd' scope c) get_client_token has 'oxd' scope in request"
	descInvalidNonce      = "Nonce value is not registered by oxd."
	descInvalidIDToken    = "id_token is invalid."
	descBadNonce          = "Invalid id_token. Nonce value from token does not match nonce from request."
	descBadAudience       = "Invalid id_token. Audience value from token does not match audience from request."
	descExpired           = "Invalid id_token. id_token expired."
	descBadIssuer         = "Invalid id_token. Bad issuer."
	descBadSignature      = "Invalid id_token. Bad signature."
	descBadAtHash         = "access_token is invalid. Hash of access_token does not match hash from id_token (at_hash)."
	descInvalidRegURL     = "Registration client URL is invalid. Please check registration_client_url response parameter from IDP (http://openid.net/specs/openid-connect-registration-1_0.html#RegistrationResponse)."
	descInvalidRequest    = "Request is invalid. It doesn't contains all required parameters or otherwise is malformed."
	descUnsupported       = "Operation is not supported by server error."
	descInvalidOPHost     = "Invalid op_host (empty or blank)."
	descNoSetupClient     = "There is no setup client for given oxd_id. Please obtain oxd_id via setup_client command in order to force protection_access_token validation."
	descBlankPAT          = "protection_access_token is blank. Command is protected by protection_access_token, please provide valid token or otherwise switch off protection in configuration with protect_commands_with_access_token=false"
	descInvalidPAT        = "Invalid protection_access_token. Command is protected by protection_access_token, please provide valid token or otherwise switch off protection in configuration with protect_commands_with_access_token=false"
	descInactivePAT       = "Inactive protection_access_token. Command is protected by protection_access_token, please provide valid token or otherwise switch off protection in configuration with protect_commands_with_access_token=false"
	descNoClientIDIntro   = "AS returned introspection response with empty/blank client_id which is required by oxd. Please check your AS installation and make sure AS return client_id for introspection call (CE 3.1.0 or later)."
	descInvalidRedirect   = "Invalid authorization_redirect_uri (empty or blank)."
	descInvalidScope      = "Invalid scope parameter (empty or blank)."
	descNoDiscovery       = "Unable to fetch Connect discovery response /.well-known/openid-configuration"
	descNoRegistration    = "OP does not support dynamic client registration (no registration_endpoint). Please register client manually and provide client_id and client_secret to register_site command (client_id alone with client_token_endpoint_auth_method=none or private_key_jwt). For setup_client also pass setup_client_id, setup_client_secret and setup_client_token_endpoint_auth_method for the protection client, or only client_id and client_secret to use one client for both roles."
	descNoUMADiscovery    = "Unable to fetch UMA discovery response /.well-known/uma2-configuration"
	descNoResources       = "Resources list to protect is empty or blank. Please check it according to protocol definition at https://gluu.org/docs/oxd"
	descNoHTTPMethod      = "http_method is not specified or otherwise not GET or POST or PUT or DELETE. Please check it according to protocol definition at https://gluu.org/docs/oxd"
	descNoPath            = "path parameter is not specified or otherwise not valid"
	descNoTicket          = "ticket parameter is not specified or otherwise is not valid"
	descNoClaimsRedirect  = "claims_redirect_uri parameter is not specified or otherwise is not valid"
	descNoRPT             = "rpt parameter is not specified or otherwise is not valid"
	descNeedInfo          = "The authorization server needs additional information in order to determine whether the client is authorized to have these permissions."
	descMethodNotUnique   = "HTTP method defined in JSON must be unique within given PATH (but occurs more then one time)."
	descBadExpression     = "Scope expression is not valid. Please check documentation and make sure expression is valid JsonLogic expression."
	descProtectionExists  = "Server already has UMA Resources registered for this oxd_id. It is possible to overwrite it if provide overwrite=true for uma_rs_protect command (existing resources will be removed and new UMA Resources added)."
	descNoEndSession      = "OP does not provide end_session_endpoint at /.well-known/openid-configuration."
	descFailedRPT         = "Failed to get RPT."
	descRemoveFailed      = "Failed to remove site."
	descNotProtectedFmt   = "Resource is not protected with path: %s and httpMethod: %s. Please protect your resource first with uma_rs_protect command. Check details on https://gluu.org/docs/oxd"
	descInvalidAlgorithm  = "Invalid algorithm provided. Valid algorithms are: [] (get_client_token does not sign private_key_jwt assertions: the engine signs only for its sites' clients, and a get_client_token caller proves nothing. Register the protection client at the OP with client_secret_basic, client_secret_post or client_secret_jwt and pass client_id, client_secret and that authentication_method)."
)

// oxdErr returns a fresh oxd error answer. A fresh value each time: callers
// (oxdclient.Client) set its Command field.
func oxdErr(code, desc string) *oxdclient.Error {
	return &oxdclient.Error{Code: code, Description: desc}
}

// errGeneric is the generic internal error of oxd-server 3.1.4, after which
// the socket listener may close the connection in its 3.1.4-quirk mode.
func errGeneric() *oxdclient.Error {
	return oxdErr(oxdclient.CodeInternalError, oxdclient.DescInternalErrorUnknown)
}

func errNoParams() *oxdclient.Error { return oxdErr(oxdclient.CodeInternalError, descNoParams) }

// badRequest is a bad_request answer with the given description.
func badRequest(desc string) *oxdclient.Error { return oxdErr(oxdclient.CodeBadRequest, desc) }

// Limits of the OAuth error fields passed on from an OP error answer.
const (
	maxOAuthError            = 64
	maxOAuthErrorDescription = 256
)

// opStatusError is a non-2xx answer of the OP or AS. It becomes the
// http_status_<N> answer of oxd (reference §3.2). 3.1.4 quoted the OP's
// body there; the engine passes on only the OAuth "error" and
// "error_description" members (sanitized, length-limited), so the engine
// cannot be used to read answers of arbitrary services.
type opStatusError struct {
	endpoint string
	status   int
	body     []byte
	// authMethod is the client authentication method the request
	// carried ("" for none): an invalid_client answer then gets a hint.
	authMethod string
}

func (e *opStatusError) Error() string {
	return fmt.Sprintf("OP %s endpoint answered HTTP %d", e.endpoint, e.status)
}

// oauthCode returns the "error" member of a JSON error body, or "".
func (e *opStatusError) oauthCode() string {
	var v struct {
		Error string `json:"error"`
	}
	if jsonUnmarshal(e.body, &v) != nil {
		return ""
	}
	return v.Error
}

// oxd returns http_status_<N> whose description is the JSON object
// {"error","error_description"} of the OP's answer (members absent when
// the OP did not send them as strings), or "The OP answered HTTP <N>."
func (e *opStatusError) oxd() *oxdclient.Error {
	var v struct {
		Error            any `json:"error"`
		ErrorDescription any `json:"error_description"`
	}
	_ = jsonUnmarshal(e.body, &v)
	out := map[string]string{}
	if s, ok := v.Error.(string); ok {
		if s = sanitizeOAuth(s, maxOAuthError); s != "" {
			out["error"] = s
		}
	}
	if s, ok := v.ErrorDescription.(string); ok {
		if s = sanitizeOAuth(s, maxOAuthErrorDescription); s != "" {
			out["error_description"] = s
		}
	}
	desc := "The OP answered HTTP " + strconv.Itoa(e.status) + "."
	if len(out) > 0 {
		if b, err := feMarshalJSON(out); err == nil {
			desc = string(b)
		}
	}
	oe := oxdErr(oxdclient.CodeHTTPStatusPrefix+strconv.Itoa(e.status), desc)
	if e.authMethod != "" && out["error"] == "invalid_client" {
		// The OP refused the client's authentication: say which method
		// was used and what to check (in details; the description stays
		// the OP's error and error_description).
		oe.Details, _ = feMarshalJSON(map[string]string{
			"token_endpoint_auth_method": e.authMethod,
			"hint":                       "the OP refused the client authentication: check the client_id, its token_endpoint_auth_method at the OP and the credentials the OP holds for it (the client secret, or for private_key_jwt the public keys of the site's key set, Engine.ClientJWKS)",
		})
	}
	return oe
}

// sanitizeOAuth keeps the characters RFC 6749 §5.2 allows in error and
// error_description (printable ASCII but '"' and '\'), replacing others
// with '?', and cuts the result to n bytes.
func sanitizeOAuth(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for _, r := range s {
		if len(b) >= n {
			break
		}
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return strings.TrimSpace(string(b))
}

// descInvalidOxdID answers a command naming an oxd_id the engine does not
// know. 3.1.4 advised "Please use register_site command to register a
// site", which sends an application with a stale site file the wrong way;
// the code stays invalid_oxd_id.
const descInvalidOxdID = "Invalid oxd_id. Unable to find site for oxd_id: this oxd does not know it (its store was reset, the site was removed, or this is another oxd). " +
	"If the application keeps the oxd_id in a site file, that file is stale: delete it and restart the application (oxdclient.EnsureSite registers the site again)."

// opCallError is a failure to exchange a request with the OP (network,
// timeout, garbage answer). It becomes an internal_error with a specific
// description (not the generic one: the connection stays usable).
type opCallError struct {
	endpoint string
	what     string // "timeout", "unreachable", "invalid response"
	err      error
}

func (e *opCallError) Error() string {
	msg := "OP " + e.endpoint + " endpoint: " + e.what
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

func (e *opCallError) Unwrap() error { return e.err }

func (e *opCallError) oxd() *oxdclient.Error {
	var d string
	switch e.what {
	case whatTimeout, whatUnreachable:
		// One message for refused, unreachable and silent hosts.
		d = "Unable to reach the OP, or it did not answer in time (" + e.endpoint + " endpoint)."
	case whatPlainHTTP:
		d = "Refusing plain http to the OP (" + e.endpoint + " endpoint); use https."
	case whatNotAllowed:
		d = "The OP is not on the server's OP allow-list (" + e.endpoint + " endpoint)."
	default:
		d = "The OP returned an invalid response (" + e.endpoint + " endpoint)."
	}
	return oxdErr(oxdclient.CodeInternalError, d)
}

const (
	whatTimeout     = "timeout"
	whatUnreachable = "unreachable"
	whatInvalid     = "invalid response"
	whatPlainHTTP   = "plain http refused"
	whatNotAllowed  = "OP not on the allow-list"
)

// toOxd turns any error of a command into the oxd answer. Unexpected errors
// become the generic internal error; generic reports whether that happened.
func toOxd(err error) (oe *oxdclient.Error, generic bool) {
	var (
		o  *oxdclient.Error
		se *opStatusError
		ce *opCallError
	)
	switch {
	case errors.As(err, &o):
		// Copy: the answer is handed to the caller, who may mutate it.
		c := *o
		return &c, false
	case errors.As(err, &se):
		return se.oxd(), false
	case errors.As(err, &ce):
		return ce.oxd(), false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return oxdErr(oxdclient.CodeInternalError, "The command was cancelled or timed out."), false
	}
	return errGeneric(), true
}

package oxdclient

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"

	"github.com/oxdgo/oxd/internal/truncate"
)

// Error codes sent by oxd-server 3.1.4 in the "error" field of a
// status:"error" response (reference: oxd ErrorResponseCode). Several
// situations share one code; [Error.Description] tells them apart.
const (
	CodeInternalError                   = "internal_error"
	CodeBadRequest                      = "bad_request"
	CodeNoIDToken                       = "no_id_token"
	CodeNoAccessToken                   = "no_access_token"
	CodeInvalidNonce                    = "invalid_nonce"
	CodeInvalidState                    = "invalid_state"
	CodeInvalidIDToken                  = "invalid_id_token"
	CodeInvalidIDTokenBadNonce          = "invalid_id_token_bad_nonce"
	CodeInvalidIDTokenBadAudience       = "invalid_id_token_bad_audience"
	CodeInvalidIDTokenExpired           = "invalid_id_token_expired"
	CodeInvalidIDTokenBadIssuer         = "invalid_id_token_bad_issuer"
	CodeInvalidIDTokenBadSignature      = "invalid_id_token_bad_signature"
	CodeInvalidIDTokenUnknown           = "invalid_id_token_unknown"
	CodeInvalidAccessTokenBadHash       = "invalid_access_token_bad_hash"
	CodeInvalidAuthorizationCodeBadHash = "invalid_authorization_code_bad_hash"
	CodeInvalidRegistrationClientURL    = "invalid_registration_client_url"
	CodeInvalidOxdID                    = "invalid_oxd_id"
	CodeInvalidRequest                  = "invalid_request"
	CodeRPTNotAuthorized                = "rpt_not_authorized"
	CodeUnsupportedOperation            = "unsupported_operation"
	CodeInvalidOPHost                   = "invalid_op_host"
	// CodeIssuerMismatch (an extension of this project's engine): the
	// authorization response's iss, relayed in get_tokens_by_code, is not
	// the OP's issuer, or is missing while the OP announces
	// authorization_response_iss_parameter_supported (RFC 9207).
	CodeIssuerMismatch                         = "issuer_mismatch"
	CodeNoSetupClientForOxdID                  = "no_setup_client_for_oxd_id"
	CodeBlankProtectionAccessToken             = "blank_protection_access_token"
	CodeInvalidProtectionAccessToken           = "invalid_protection_access_token"
	CodeInactiveProtectionAccessToken          = "inactive_protection_access_token"
	CodeProtectionAccessTokenInsufficientScope = "protection_access_token_insufficient_scope"
	CodeInvalidIntrospectionResponse           = "invalid_introspection_response"
	CodeInvalidAuthorizationRedirectURI        = "invalid_authorization_redirect_uri"
	CodeInvalidScope                           = "invalid_scope"
	CodeInvalidAcrValues                       = "invalid_acr_values"
	CodeInvalidAlgorithm                       = "invalid_algorithm"
	CodeNoConnectDiscoveryResponse             = "no_connect_discovery_response"
	CodeNoUMADiscoveryResponse                 = "no_uma_discovery_response"
	CodeInvalidUMARequest                      = "invalid_uma_request"
	CodeInvalidHTTPMethod                      = "invalid_http_method"
	CodeInvalidPathParameter                   = "invalid_path_parameter"
	CodeInvalidTicketParameter                 = "invalid_ticket_parameter"
	CodeInvalidClaimsRedirectURIParameter      = "invalid_claims_redirect_uri_parameter"
	CodeInvalidRPTParameter                    = "invalid_rpt_parameter"
	CodeNeedInfo                               = "need_info"
	CodeHTTPMethodNotUnique                    = "http_method_not_unique"
	CodeInvalidScopeExpression                 = "invalid_scope_expressioin" // sic: the 3.1.4 spelling
	CodeUMAProtectionExists                    = "uma_protection_exists"
	CodeNoEndSessionEndpoint                   = "no_end_session_endpoint_at_op"
	CodeNoRevocationEndpoint                   = "no_revocation_endpoint_at_op"
	CodeRemoveSiteFailed                       = "remove_site_failed"

	// CodeForbidden is the code of the HTTPS extension's own "403
	// Forbidden Access" answer: the Authorization header was missing or
	// not "Bearer <token>".
	CodeForbidden = "403"

	// CodeHTTPStatusPrefix starts the code of an error that oxd passes
	// through from the OP/AS: "http_status_<N>", with the OP's body as the
	// description. See [Error.HTTPStatus].
	CodeHTTPStatusPrefix = "http_status_"
)

// Error descriptions that change what a caller should do.
const (
	// DescInternalErrorUnknown is the generic internal error after which
	// oxd-server 3.1.4 closes the connection.
	DescInternalErrorUnknown = "Unknown internal server error occurs."
	// DescStateNotRegistered comes with bad_request when the state given to
	// get_tokens_by_code is unknown or expired at oxd.
	DescStateNotRegistered = "'state' is not registered."
)

// Error is a status:"error" answer from oxd. It is returned (wrapped or not)
// by every [Client] method; use errors.As to read it.
//
// Description may quote an OP response body (http_status_<N>) but never a
// secret that this package sent. Details is non-nil only for need_info.
type Error struct {
	Code        string          `json:"error"`
	Description string          `json:"error_description"`
	Details     json.RawMessage `json:"details,omitempty"`

	// Command is the oxd command that failed; it is not part of the wire.
	Command string `json:"-"`
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("oxd")
	if e.Command != "" {
		b.WriteString(" ")
		b.WriteString(e.Command)
	}
	b.WriteString(": ")
	b.WriteString(truncate.String(e.Code, 100))
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(truncate.String(e.Description, 300))
	}
	return b.String()
}

// LogValue implements slog.LogValuer.
func (e *Error) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("command", e.Command),
		slog.String("code", e.Code),
		slog.String("description", e.Description),
	)
}

// Is makes errors.Is(err, &Error{Code: c}) match any error with code c, and
// errors.Is(err, ErrNeedInfo) etc. work through the sentinels below.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t.Code != "" && t.Code != e.Code {
		return false
	}
	if t.Description != "" && t.Description != e.Description {
		return false
	}
	return t.Code != "" || t.Description != ""
}

// HTTPStatus returns N for an "http_status_<N>" error, else 0.
func (e *Error) HTTPStatus() int {
	if !strings.HasPrefix(e.Code, CodeHTTPStatusPrefix) {
		return 0
	}
	n, err := strconv.Atoi(e.Code[len(CodeHTTPStatusPrefix):])
	if err != nil || n < 100 || n > 599 {
		return 0
	}
	return n
}

// NeedInfo decodes Details of a need_info error. ok is false for any other
// error or when the details are missing or malformed.
func (e *Error) NeedInfo() (ni *NeedInfo, ok bool) {
	if e.Code != CodeNeedInfo || len(e.Details) == 0 || string(e.Details) == "null" {
		return nil, false
	}
	var v NeedInfo
	if err := json.Unmarshal(e.Details, &v); err != nil {
		return nil, false
	}
	return &v, true
}

// NeedInfo is the UMA 2.0 need_info answer of the AS (Grant §3.3.6) that oxd
// passes through in the details of a need_info error.
type NeedInfo struct {
	Error          string          `json:"error"`
	Ticket         string          `json:"ticket"`
	RequiredClaims []RequiredClaim `json:"required_claims"`
	RedirectUser   string          `json:"redirect_user"`
}

// RequiredClaim is one entry of NeedInfo.RequiredClaims.
type RequiredClaim struct {
	ClaimTokenFormat []string `json:"claim_token_format,omitempty"`
	ClaimType        string   `json:"claim_type,omitempty"`
	FriendlyName     string   `json:"friendly_name,omitempty"`
	Issuer           []string `json:"issuer,omitempty"`
	Name             string   `json:"name,omitempty"`
}

// Sentinels for errors.Is. Each matches any [*Error] with that code.
var (
	ErrNeedInfo            = &Error{Code: CodeNeedInfo}
	ErrInvalidOxdID        = &Error{Code: CodeInvalidOxdID}
	ErrUnsupportedCommand  = &Error{Code: CodeUnsupportedOperation}
	ErrUMAProtectionExists = &Error{Code: CodeUMAProtectionExists}
	// ErrStateNotRegistered matches oxd's answer to get_tokens_by_code when
	// the state expired or was never issued: restart the login.
	ErrStateNotRegistered = &Error{Code: CodeBadRequest, Description: DescStateNotRegistered}
)

// IsNeedInfo reports whether err is a need_info error from oxd.
func IsNeedInfo(err error) bool { return errors.Is(err, ErrNeedInfo) }

// IsInvalidOxdID reports whether oxd does not know the oxd_id.
func IsInvalidOxdID(err error) bool { return errors.Is(err, ErrInvalidOxdID) }

// IsStateNotRegistered reports whether oxd rejected the state of a callback
// (expired or unknown); the login should be restarted.
func IsStateNotRegistered(err error) bool { return errors.Is(err, ErrStateNotRegistered) }

// IsProtectionTokenError reports whether oxd rejected the protection access
// token (blank, invalid, inactive, or without the oxd scope), or the HTTPS
// extension refused a command without one (403).
func IsProtectionTokenError(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case CodeBlankProtectionAccessToken, CodeInvalidProtectionAccessToken,
		CodeInactiveProtectionAccessToken, CodeProtectionAccessTokenInsufficientScope,
		CodeForbidden:
		return true
	}
	return false
}

// isRetryableTokenError reports the protection-token errors after which a
// fresh token may succeed.
func isRetryableTokenError(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code {
	case CodeBlankProtectionAccessToken, CodeInvalidProtectionAccessToken, CodeInactiveProtectionAccessToken:
		return true
	}
	return false
}

// IsGenericInternalError reports the generic internal_error after which
// oxd-server 3.1.4 closes the connection.
func IsGenericInternalError(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeInternalError && e.Description == DescInternalErrorUnknown
}

// HTTPStatus returns N when err is an oxd "http_status_<N>" error, else 0.
func HTTPStatus(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.HTTPStatus()
	}
	return 0
}

// Transport failures. Every error that is not an oxd status:"error" answer
// wraps one of these (and usually the underlying net or context error), so a
// caller can tell "oxd said no" from "oxd could not be reached".
var (
	// ErrUnavailable: oxd could not be reached (dial failure, refused
	// connection, TLS failure, HTTP transport error).
	ErrUnavailable = errors.New("oxd unavailable")
	// ErrTimeout: a deadline from the context or the configuration fired.
	ErrTimeout = errors.New("oxd timeout")
	// ErrProtocol: oxd answered something that is not a valid frame or
	// envelope (bad prefix, truncated frame, invalid JSON, HTTP error body).
	ErrProtocol = errors.New("oxd protocol error")
	// ErrTooLarge: the request does not fit in a 9999-unit socket frame.
	// Nothing was sent.
	ErrTooLarge = errors.New("oxd request too large")
	// ErrClosed: the client or transport was closed.
	ErrClosed = errors.New("oxd client closed")
)

// TransportError describes a failure to exchange a command with oxd.
// It wraps one of ErrUnavailable, ErrTimeout, ErrProtocol, ErrTooLarge,
// ErrClosed and the underlying cause. Its message never contains the
// request or response body.
type TransportError struct {
	Command string
	Kind    error // one of the Err* transport sentinels
	Err     error // underlying cause, may be nil
	// Sent reports whether any byte of the request may have reached oxd.
	Sent bool
}

func (e *TransportError) Error() string {
	msg := "oxd " + e.Command + ": " + e.Kind.Error()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns both the kind and the cause.
func (e *TransportError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func transportErr(command string, kind, cause error, sent bool) error {
	return &TransportError{Command: command, Kind: kind, Err: cause, Sent: sent}
}

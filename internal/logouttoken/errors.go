package logouttoken

import "errors"

// reason is a refused token's reason: a sentinel that wraps ErrInvalidToken.
// Its text never contains the token or a claim value.
type reason struct{ msg string }

func (r *reason) Error() string { return "logouttoken: " + r.msg }
func (r *reason) Unwrap() error { return ErrInvalidToken }

// ErrInvalidToken is wrapped by every reason a logout token is refused for
// (errors.Is(err, ErrInvalidToken) tells a bad token from a failure of ours:
// ErrKeysUnavailable, ErrReplayCheck).
var ErrInvalidToken = errors.New("logouttoken: invalid logout token")

// Reasons a logout token is refused (each wraps ErrInvalidToken).
var (
	ErrTooLarge   error = &reason{"token larger than the limit"}
	ErrMalformed  error = &reason{"not a compact JWS with a JSON object payload"}
	ErrAlgorithm  error = &reason{"signature algorithm not allowed"}
	ErrType       error = &reason{"typ header is neither logout+jwt nor JWT"}
	ErrUnknownKey error = &reason{"no key of the OP matches the token's kid"}
	ErrSignature  error = &reason{"signature does not verify"}
	ErrIssuer     error = &reason{"iss is not the OP's issuer"}
	ErrAudience   error = &reason{"aud does not contain the client_id"}
	ErrIssuedAt   error = &reason{"iat missing, malformed or in the future"}
	ErrTooOld     error = &reason{"iat older than the accepted window"}
	ErrExpired    error = &reason{"exp has passed"}
	ErrClaimType  error = &reason{"a claim has the wrong type or length"}
	ErrEvents     error = &reason{"events lacks the back-channel logout event object"}
	ErrNoSubject  error = &reason{"neither sid nor sub present"}
	ErrNonce      error = &reason{"nonce present (an ID token, not a logout token)"}
	ErrJTI        error = &reason{"jti missing"}
	ErrReplayed   error = &reason{"jti already used (replay)"}
)

// Failures of ours, not of the token (they do not wrap ErrInvalidToken).
var (
	// ErrKeysUnavailable: the OP's discovery document or JWKS could not be
	// fetched and no keys are cached.
	ErrKeysUnavailable = errors.New("logouttoken: the OP's keys are unavailable")
	// ErrReplayCheck: the replay cache failed; the token is refused because
	// its single use cannot be guaranteed.
	ErrReplayCheck = errors.New("logouttoken: replay cache unavailable")
)

// Reason returns the short reason of a refused token ("" for other
// errors): text safe to show to the sender and to log.
func Reason(err error) string {
	var r *reason
	if errors.As(err, &r) {
		return r.msg
	}
	return ""
}

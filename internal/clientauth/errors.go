package clientauth

import "errors"

// Sentinel errors, wrapped by *ConfigError (test with errors.Is).
var (
	// ErrUnknownMethod: a method name this package does not implement.
	ErrUnknownMethod = errors.New("clientauth: unknown client authentication method")
	// ErrNoCommonMethod: the OP lists no method this package implements.
	ErrNoCommonMethod = errors.New("clientauth: no client authentication method in common with the OP")
	// ErrMethodNotSupportedByOP: the caller named a method the OP does not list.
	ErrMethodNotSupportedByOP = errors.New("clientauth: client authentication method not supported by the OP")
	// ErrMissingClientID: no client_id.
	ErrMissingClientID = errors.New("clientauth: client_id is required")
	// ErrMissingSecret: a secret-based method without a client secret.
	ErrMissingSecret = errors.New("clientauth: client_secret is required for this method")
	// ErrSecretNotAllowed: a public client (none) given a client secret.
	ErrSecretNotAllowed = errors.New("clientauth: a public client has no client_secret")
	// ErrWeakSecret: a client_secret_jwt secret shorter than the HMAC
	// output (RFC 7518 §3.2).
	ErrWeakSecret = errors.New("clientauth: client_secret too short for the HMAC algorithm")
	// ErrMissingKeys: private_key_jwt without a key set able to sign.
	ErrMissingKeys = errors.New("clientauth: private_key_jwt needs a key set")
	// ErrPKCERequired: a public client whose caller does not use PKCE.
	ErrPKCERequired = errors.New("clientauth: a public client (none) requires PKCE")
	// ErrUnsupportedAlg: a signing algorithm this package does not implement
	// for the method.
	ErrUnsupportedAlg = errors.New("clientauth: unsupported signing algorithm")
	// ErrAlgNotSupportedByOP: the OP does not list the signing algorithm.
	ErrAlgNotSupportedByOP = errors.New("clientauth: signing algorithm not supported by the OP")
	// ErrAlgNotApplicable: a signing algorithm for a method without assertions.
	ErrAlgNotApplicable = errors.New("clientauth: signing algorithm given for a method without client assertion")
	// ErrMissingAudience: an assertion method without the URL its aud needs.
	ErrMissingAudience = errors.New("clientauth: the client assertion audience is unknown")
	// ErrBadAssertionTTL: an assertion lifetime outside (0, MaxAssertionTTL].
	ErrBadAssertionTTL = errors.New("clientauth: client assertion lifetime out of range")
	// ErrAlreadyAuthenticated: the request already carries client
	// authentication (an Authorization header, client_secret or
	// client_assertion); two methods in one request are refused by OPs
	// (RFC 6749 §2.3).
	ErrAlreadyAuthenticated = errors.New("clientauth: the request already carries client authentication")
	// ErrBadKeySet: a key set that cannot be used or loaded.
	ErrBadKeySet = errors.New("clientauth: invalid key set")
	// ErrSign: signing the client assertion failed.
	ErrSign = errors.New("clientauth: could not sign the client assertion")
)

// ConfigError is a configuration that cannot authenticate the client.
// Its message says which field is wrong, why, and what to pass instead;
// it never quotes a secret.
type ConfigError struct {
	Err    error  // one of the Err… sentinels
	Field  string // the oxd parameter or OP metadata field concerned
	Reason string
	Fix    string // what to pass instead
}

func (e *ConfigError) Error() string {
	s := e.Err.Error()
	if e.Field != "" {
		s += " (" + e.Field + ")"
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}

// Unwrap returns the sentinel.
func (e *ConfigError) Unwrap() error { return e.Err }

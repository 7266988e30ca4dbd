package oxdclient

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// redacted is what a [Secret] prints in place of its value.
const redacted = "[REDACTED]"

// Secret holds a credential: a client secret, an access, refresh or id
// token, an RPT, a protection access token or a registration access token.
//
// A Secret never prints its value: String, GoString, Format (every fmt verb)
// and LogValue all yield "[REDACTED]", so a Secret can be put into an error
// string, a log line or a %+v dump without leaking. The value travels on the
// oxd wire (MarshalJSON and UnmarshalJSON use the plain string) and is read
// with [Secret.Reveal] or a plain conversion, string(s).
//
// One limit: fmt handles %p (and %w outside Errorf's error operands) before
// looking for a Format method, and its "%!p(…)" diagnostic prints the raw
// value. Both are misuses that go vet's printf check reports.
type Secret string

// Reveal returns the secret value. Call it only where the value must leave
// the process (an HTTP header, a form field, a cookie-less store).
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s == "" }

// String returns "[REDACTED]" (or "" for an empty secret, so that absence
// stays visible in diagnostics).
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer; it never reveals the value.
func (s Secret) GoString() string { return fmt.Sprintf("oxdclient.Secret(%q)", s.String()) }

// Format implements fmt.Formatter so that every verb (%s, %v, %q, %x, …)
// prints the redacted form.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = fmt.Fprint(f, s.GoString())
		return
	}
	_, _ = fmt.Fprint(f, s.String())
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes the real value: it is used for the oxd wire only.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(string(s)) }

// UnmarshalJSON reads a string or null.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v *string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("oxdclient: secret is not a JSON string")
	}
	if v == nil {
		*s = ""
		return nil
	}
	*s = Secret(*v)
	return nil
}

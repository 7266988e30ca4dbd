// Package jwtclaims holds the JWT claim rules that the engine's ID token
// validation and the back-channel logout token validation share.
package jwtclaims

import (
	"encoding/json"
	"math"
	"time"
)

// NumericDate reads a JWT NumericDate (RFC 7519 §2) decoded with
// json.Decoder.UseNumber: seconds since the epoch, fractions allowed. It
// refuses anything but a finite, non-negative number below 1e11 (about the
// year 5138), so that no conversion can overflow.
func NumericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

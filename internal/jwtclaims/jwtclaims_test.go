package jwtclaims

import (
	"encoding/json"
	"testing"
	"time"
)

func TestNumericDate(t *testing.T) {
	for _, c := range []struct {
		in   any
		want time.Time
		ok   bool
	}{
		{json.Number("0"), time.Unix(0, 0), true},
		{json.Number("1700000000"), time.Unix(1700000000, 0), true},
		{json.Number("1700000000.5"), time.Unix(1700000000, 5e8), true},
		{json.Number("-1"), time.Time{}, false},
		{json.Number("1e12"), time.Time{}, false},
		{json.Number("NaN"), time.Time{}, false},
		{json.Number("x"), time.Time{}, false},
		{float64(1700000000), time.Time{}, false},
		{"1700000000", time.Time{}, false},
		{nil, time.Time{}, false},
	} {
		got, ok := NumericDate(c.in)
		if ok != c.ok || !got.Equal(c.want) {
			t.Errorf("NumericDate(%#v) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

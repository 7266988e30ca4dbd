package truncate

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"", 0, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"abc", 0, "…"},
		{"abc", -1, "…"},
		{"héllo", 2, "h…"}, // é is 2 bytes: not cut in half
		{"héllo", 3, "hé…"},
		{"a€b", 2, "a…"}, // € is 3 bytes
		{"a€b", 3, "a…"},
		{"a€b", 4, "a€…"},
		{"a😀b", 4, "a…"}, // 😀 is 4 bytes
		{"a😀b", 5, "a😀…"},
		{"\x80\x80\x80\x80\x80x", 2, "\x80\x80…"}, // invalid UTF-8: cut at n
	} {
		if got := String(tc.s, tc.n); got != tc.want {
			t.Errorf("String(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// FuzzString: the result is s, or a prefix of s losing fewer than
// utf8.UTFMax bytes below n followed by the marker; valid UTF-8 stays
// valid.
func FuzzString(f *testing.F) {
	f.Add("héllo wörld 😀", 7)
	f.Add("\xff\xfe abc", 1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n %= 1 << 12
		got := String(s, n)
		if len(s) <= max(n, 0) {
			if got != s {
				t.Fatalf("%q cut at %d: %q", s, n, got)
			}
			return
		}
		p, ok := strings.CutSuffix(got, Ellipsis)
		if !ok || !strings.HasPrefix(s, p) || len(p) > max(n, 0) || max(n, 0)-len(p) >= utf8.UTFMax {
			t.Fatalf("String(%q, %d) = %q", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("String(%q, %d) = %q is not valid UTF-8", s, n, got)
		}
	})
}

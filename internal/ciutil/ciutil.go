// Package ciutil is the one place where the tests of every module of the
// repository decide whether they run under CI, and what a missing component
// (a binary, a port, a service) means there.
//
// CI is on when the environment variable CI holds a true value: "true", "1",
// "yes", "on" (any case). It is off when CI is unset, empty, or one of
// "false", "0", "no", "off" (any case). Any other value counts as on, so a
// misspelled CI setting fails closed: nothing skips.
//
// Under CI a missing component fails the test that needs it; elsewhere the
// test is skipped with one line that names what is missing and the command
// that installs everything (bash scripts/test.sh). scripts/test.sh exports
// CI=true unless CI is already set; CI=false lets the tests skip.
//
// The package imports testing and is meant for tests only.
package ciutil

import (
	"os"
	"strings"
	"testing"
)

// TestCommand is the command, run from the repository root, that installs
// every component the tests need and runs them all.
const TestCommand = "bash scripts/test.sh"

// Enabled reports whether the tests run under CI (see the package doc for the
// values of the CI environment variable).
func Enabled() bool {
	v, ok := os.LookupEnv("CI")
	if !ok {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}

// Missing reports that the component what, which the test needs, is not
// available. Under CI it fails the test (t.Fatal: a missing component is never
// a skip there); elsewhere it skips the test with one line naming what is
// missing and TestCommand. It does not return in either case when t is a
// *testing.T or *testing.B.
func Missing(t testing.TB, what string) {
	t.Helper()
	what = oneLine(what)
	if Enabled() {
		t.Fatalf("missing: %s (CI is set, so a missing component is a failure; `%s` installs everything)", what, TestCommand)
		return
	}
	t.Skipf("skipped: %s; run `%s` from the repository root to install it and run every test (CI=true makes this a failure)", what, TestCommand)
}

// Need is Missing(t, what+": "+err) when err is not nil, and does nothing
// when err is nil:
//
//	_, err := exec.LookPath("redis-server")
//	ciutil.Need(t, "redis-server (Debian package redis-server)", err)
func Need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	Missing(t, what+": "+err.Error())
}

// oneLine folds a multi-line text into one line so a skip stays one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

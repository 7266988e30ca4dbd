// Package harness starts the real components of the end-to-end tests of oxd
// for Go: the certified OpenID Provider oidc-provider with a UMA 2.0 layer
// (e2e/op), Redis, headless Chromium driven by chromedp, and the oxd-node
// client (e2e/oxdnode).
//
// Every process it starts runs in its own process group, listens on 127.0.0.1
// only, and is stopped by its PID (and its group) when the test ends, so no
// orphan outlives a test.
//
// A missing component is handled by [Required]: with the CI environment
// variable set to a true value the test fails, otherwise it is skipped with one line that says
// what is missing and how to install it (bash scripts/test.sh).
package harness

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/oxdgo/oxd/internal/ciutil"
)

// TestCommand is the command that installs every component and runs all tests.
const TestCommand = ciutil.TestCommand

// Required reports that the component what is missing. Under CI (see
// internal/ciutil for the values of the CI environment variable) it fails the
// test (a missing component is never a skip there); elsewhere it skips the
// test with one line naming what is missing and the command that installs it.
func Required(t testing.TB, what string) {
	t.Helper()
	ciutil.Missing(t, "e2e: "+what)
}

var (
	dirOnce sync.Once
	dirPath string
)

// Dir returns the directory of the e2e module (the one holding op/ and
// oxdnode/). It is found from this source file, or from OXD_E2E_DIR when set.
// It returns "" when neither works.
func Dir() string {
	dirOnce.Do(func() {
		if d := os.Getenv("OXD_E2E_DIR"); d != "" {
			dirPath = d
			return
		}
		if _, file, _, ok := runtime.Caller(0); ok {
			d := filepath.Dir(filepath.Dir(file))
			if isE2EDir(d) {
				dirPath = d
				return
			}
		}
		// Built with -trimpath: walk up from the working directory.
		wd, err := os.Getwd()
		if err != nil {
			return
		}
		for d := wd; ; d = filepath.Dir(d) {
			for _, c := range []string{d, filepath.Join(d, "e2e")} {
				if isE2EDir(c) {
					dirPath = c
					return
				}
			}
			if filepath.Dir(d) == d {
				return
			}
		}
	})
	return dirPath
}

func isE2EDir(d string) bool {
	_, err := os.Stat(filepath.Join(d, "op", "provider.mjs"))
	return err == nil
}

// e2eDir is Dir, or a Required failure when the directory cannot be found.
func e2eDir(t testing.TB) string {
	t.Helper()
	d := Dir()
	if d == "" {
		Required(t, "the e2e directory (with op/provider.mjs) was not found; set OXD_E2E_DIR")
	}
	return d
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

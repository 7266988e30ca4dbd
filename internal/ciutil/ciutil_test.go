package ciutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skipf and Fatalf instead of stopping
// the goroutine.
type recorder struct {
	testing.TB
	skipped, fatal string
	calls          int
}

func (r *recorder) Helper() {}
func (r *recorder) Skipf(f string, args ...any) {
	r.calls++
	r.skipped = fmt.Sprintf(f, args...)
}
func (r *recorder) Fatalf(f string, args ...any) {
	r.calls++
	r.fatal = fmt.Sprintf(f, args...)
}

// setCI sets CI to v, or unsets it when set is false; the previous value is
// restored when t ends.
func setCI(t *testing.T, v string, set bool) {
	t.Helper()
	t.Setenv("CI", "registers the restore")
	if set {
		if err := os.Setenv("CI", v); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.Unsetenv("CI"); err != nil {
		t.Fatal(err)
	}
}

var ciValues = []struct {
	v   string
	set bool
	on  bool
}{
	{set: false, on: false},
	{v: "", set: true, on: false},
	{v: "  ", set: true, on: false},
	{v: "false", set: true, on: false},
	{v: "FALSE", set: true, on: false},
	{v: " False ", set: true, on: false},
	{v: "0", set: true, on: false},
	{v: "no", set: true, on: false},
	{v: "No", set: true, on: false},
	{v: "off", set: true, on: false},
	{v: "true", set: true, on: true},
	{v: "TRUE", set: true, on: true},
	{v: "True", set: true, on: true},
	{v: "1", set: true, on: true},
	{v: "yes", set: true, on: true},
	{v: "YES", set: true, on: true},
	{v: "on", set: true, on: true},
	// Anything else fails closed.
	{v: "ture", set: true, on: true},
	{v: "2", set: true, on: true},
	{v: "github-actions", set: true, on: true},
	{v: "false-ish", set: true, on: true},
}

func TestEnabled(t *testing.T) {
	for _, tc := range ciValues {
		t.Run(fmt.Sprintf("CI=%q set=%v", tc.v, tc.set), func(t *testing.T) {
			setCI(t, tc.v, tc.set)
			if got := Enabled(); got != tc.on {
				t.Fatalf("Enabled() = %v, want %v", got, tc.on)
			}
		})
	}
}

func TestMissingFailsUnderCIAndSkipsElsewhere(t *testing.T) {
	for _, tc := range ciValues {
		t.Run(fmt.Sprintf("CI=%q set=%v", tc.v, tc.set), func(t *testing.T) {
			setCI(t, tc.v, tc.set)
			r := &recorder{TB: t}
			Missing(r, "redis-server is not installed")
			if r.calls != 1 {
				t.Fatalf("want exactly one Skipf or Fatalf, got %d", r.calls)
			}
			msg := r.skipped
			if tc.on {
				if r.fatal == "" || r.skipped != "" {
					t.Fatalf("under CI want a failure, got skip=%q fatal=%q", r.skipped, r.fatal)
				}
				msg = r.fatal
			} else if r.skipped == "" || r.fatal != "" {
				t.Fatalf("without CI want a skip, got skip=%q fatal=%q", r.skipped, r.fatal)
			}
			if strings.Contains(msg, "\n") || !strings.Contains(msg, "redis-server is not installed") ||
				!strings.Contains(msg, TestCommand) {
				t.Fatalf("message must be one line naming what is missing and %q: %q", TestCommand, msg)
			}
		})
	}
}

func TestNeed(t *testing.T) {
	t.Run("nil error does nothing, even under CI", func(t *testing.T) {
		for _, on := range []string{"true", "false"} {
			setCI(t, on, true)
			r := &recorder{TB: t}
			Need(r, "redis-server", nil)
			if r.calls != 0 {
				t.Fatalf("CI=%s: Need with a nil error called Skipf/Fatalf: skip=%q fatal=%q", on, r.skipped, r.fatal)
			}
		}
	})
	err := errors.New("exec: \"redis-server\": executable file not found in $PATH\nsecond line")
	t.Run("error under CI fails naming the component and the error", func(t *testing.T) {
		setCI(t, "true", true)
		r := &recorder{TB: t}
		Need(r, "redis-server", err)
		if r.fatal == "" || r.skipped != "" {
			t.Fatalf("want a failure, got skip=%q fatal=%q", r.skipped, r.fatal)
		}
		if !strings.Contains(r.fatal, "redis-server") || !strings.Contains(r.fatal, "executable file not found") {
			t.Fatalf("failure must name the component and the error: %q", r.fatal)
		}
	})
	t.Run("error without CI skips with one line", func(t *testing.T) {
		setCI(t, "false", true)
		r := &recorder{TB: t}
		Need(r, "redis-server", err)
		if r.skipped == "" || r.fatal != "" {
			t.Fatalf("want a skip, got skip=%q fatal=%q", r.skipped, r.fatal)
		}
		if strings.Contains(r.skipped, "\n") || !strings.Contains(r.skipped, "second line") {
			t.Fatalf("skip must be one line holding the whole error: %q", r.skipped)
		}
	})
}

// TestMissingStopsARealTest runs this test binary again on
// TestChildMissing, a test that calls Missing on a real *testing.T: under CI
// that test must fail (and not go on), without CI it must be skipped.
func TestMissingStopsARealTest(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{ci: "true", wantFail: true, want: "--- FAIL: TestChildMissing"},
		{ci: "false", wantFail: false, want: "--- SKIP: TestChildMissing"},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildMissing$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"=1", "CI="+tc.ci)
			out, err := cmd.CombinedOutput()
			var exitErr *exec.ExitError
			failed := errors.As(err, &exitErr)
			if err != nil && !failed {
				t.Fatalf("running the child test: %v", err)
			}
			if failed != tc.wantFail {
				t.Fatalf("child failed=%v, want %v; output:\n%s", failed, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "a component") {
				t.Fatalf("child output lacks %q naming the component:\n%s", tc.want, out)
			}
			if strings.Contains(string(out), "after Missing") {
				t.Fatalf("the child test went on after Missing:\n%s", out)
			}
		})
	}
}

const childEnv = "OXD_CIUTIL_CHILD"

// TestChildMissing does its work only when run by
// TestMissingStopsARealTest (it passes otherwise: under CI nothing skips).
func TestChildMissing(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		return
	}
	Missing(t, "a component")
	t.Log("after Missing")
}

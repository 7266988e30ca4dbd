package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTestCodeLinked: the production binary links no test code. The
// development OP comes from oxdtest/devop, which must not pull in package
// testing, the oxdtest kit or testify (directly or through anything else).
func TestNoTestCodeLinked(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the binary's packages: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-deps", ".")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	has := map[string]bool{}
	for _, p := range deps {
		has[p] = true
		switch {
		case p == "testing", strings.HasPrefix(p, "testing/"):
			t.Errorf("the binary links %s", p)
		case p == "github.com/oxdgo/oxd/oxdtest":
			t.Errorf("the binary links the test kit %s (use oxdtest/devop)", p)
		case strings.Contains(p, "testify"):
			t.Errorf("the binary links %s", p)
		}
	}
	// The list is the binary's: it holds what -dev-op and the engine need.
	for _, want := range []string{"github.com/oxdgo/oxd/cmd/oxd-server", "github.com/oxdgo/oxd/oxdserver", "github.com/oxdgo/oxd/oxdtest/devop"} {
		if !has[want] {
			t.Errorf("go list -deps does not list %s (%d packages)", want, len(deps))
		}
	}
}

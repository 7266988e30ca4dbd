package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeQuickStart: the README's quick start is this program's
// essential lines, and it compiles as it stands (no undefined names): its
// Go block, with the imports it needs and an empty main, builds, and its
// wiring lines (EnsureSite, oxd.New, the routes) are lines of main.go.
func TestReadmeQuickStart(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Quick start (net/http)")
	if !ok {
		t.Fatal("README has no quick start")
	}
	_, rest, ok = strings.Cut(rest, "```go\n")
	code, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("the quick start has no Go block")
	}
	for _, want := range []string{"go run ./cmd/oxd-server -dev-op -dev-op-addr 127.0.0.1:8090", "go run ./examples/minimal"} {
		if !strings.Contains(string(readme), "    "+want+"\n") {
			t.Errorf("the quick start does not show %q", want)
		}
	}

	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(src), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	n := 0
	for _, l := range strings.Split(code, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "mux.") || strings.HasPrefix(l, "}, oxdclient.ReRegisterOnMismatch()") ||
			strings.HasPrefix(l, "auth, err := oxd.New(") || strings.HasPrefix(l, "OxdID:") || strings.Contains(l, "base + \"/") {
			n++
			if !lines[l] {
				t.Errorf("README line %q is not in examples/minimal/main.go", l)
			}
		}
	}
	if n < 12 {
		t.Errorf("only %d wiring lines compared", n)
	}

	// Compile it.
	dir, err := os.MkdirTemp(".", "_readme")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	prog := `package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/oxdclient"
)

func main() { _ = run(context.Background()) }

` + code
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(prog), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goTool(t), "vet", "./"+filepath.Base(dir)).CombinedOutput()
	if err != nil {
		t.Fatalf("the README's quick start does not compile: %v\n%s", err, out)
	}
}

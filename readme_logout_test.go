package oxd

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeLogoutSnippetsCompile: every line of the Go blocks of the
// README's "Logout everywhere" section is a line of a compiled example
// (example_logout_test.go, the adapters' example_test.go), so the README
// shows code that builds with net/http, chi, gin and echo.
func TestReadmeLogoutSnippetsCompile(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(readme), "### Logout everywhere\n")
	if !ok {
		t.Fatal("README has no Logout everywhere section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	lines := map[string]bool{}
	for _, f := range []string{"example_logout_test.go", "adapters/chi/example_test.go", "adapters/gin/example_test.go", "adapters/echo/example_test.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(src), "\n") {
			lines[strings.TrimSpace(l)] = true
		}
	}
	blocks := 0
	for {
		_, rest, ok := strings.Cut(sec, "```go\n")
		if !ok {
			break
		}
		code, after, _ := strings.Cut(rest, "```\n")
		sec = after
		blocks++
		for _, l := range strings.Split(code, "\n") {
			if l = strings.TrimSpace(l); l != "" && !lines[l] {
				t.Errorf("README line %q is in no compiled example", l)
			}
		}
	}
	if blocks < 2 {
		t.Fatalf("%d Go blocks in the section, want the net/http one and the routers' one", blocks)
	}
}

package oxdserver_test

import (
	osexec "os/exec"
	"strings"
	"testing"
)

// TestNoRedisWithoutRedisStore: an application that uses the middleware,
// the client and the embedded engine with the memory or file store links
// no go-redis; only oxdserver/redisstore (and the root module's scsredis
// and sessionindex) import it.
func TestNoRedisWithoutRedisStore(t *testing.T) {
	goBin, err := osexec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the packages' imports: %v", err)
	}
	app := []string{
		"github.com/oxdgo/oxd",
		"github.com/oxdgo/oxd/oxdclient",
		"github.com/oxdgo/oxd/oxdclient/umaclient",
		"github.com/oxdgo/oxd/oxdserver",
		"github.com/oxdgo/oxd/oxdtest/devop",
	}
	out, err := osexec.Command(goBin, append([]string{"list", "-deps"}, app...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	has := map[string]bool{}
	for _, p := range deps {
		has[p] = true
		if strings.HasPrefix(p, "github.com/redis/") || strings.HasSuffix(p, "/redisstore") {
			t.Errorf("an application of %v links %s", app, p)
		}
	}
	for _, want := range app {
		if !has[want] {
			t.Errorf("go list -deps does not list %s (%d packages)", want, len(deps))
		}
	}
	// The check can fail: the Redis store does pull go-redis in.
	out, err = osexec.Command(goBin, "list", "-deps", "github.com/oxdgo/oxd/oxdserver/redisstore").Output()
	if err != nil {
		t.Fatalf("go list -deps redisstore: %v", err)
	}
	if !strings.Contains(string(out), "github.com/redis/go-redis/v9\n") {
		t.Error("oxdserver/redisstore does not link go-redis: the check above proves nothing")
	}
}

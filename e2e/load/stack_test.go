package load_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/e2e/load"
	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/oxdtest"
)

// Mode: OXD_LOAD=long runs the long mode (500 users, scenarios c and g);
// anything else the short mode.
func longMode() bool { return os.Getenv("OXD_LOAD") == "long" }

// callTimeout is the apps' call timeout of oxd calls: the default of the
// middleware (10 s).
const callTimeout = 10 * time.Second

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// binaries builds the app and oxd-server once per test binary.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "oxd-load-bin-")
		if buildErr != nil {
			return
		}
		env := &load.Env{Bin: buildDir}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		buildErr = env.Build(ctx)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// stack is one deployment: Redis, the OP behind its fault proxy,
// oxd-server, two app replicas behind the round-robin proxy.
type stack struct {
	env   *load.Env
	redis *redistest.Server
	// cluster holds the sessions in the "cluster" stack (oxd-server's
	// store stays on redis).
	cluster *redistest.Cluster
	op      *load.OP
	oxd     *load.Oxd
	rr      *load.RoundRobin
	apps    []*load.App
	tr      *http.Transport
	site    string
	// record is the JSON-lines file of this run's figures.
	record string
}

func requireTools(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"node", "redis-server", "redis-cli", "go"} {
		if _, err := exec.LookPath(bin); err != nil {
			harness.Required(t, bin+" is not installed")
		}
	}
	harness.OPDir(t)
}

// devOPUsers are the accounts of the development OP in the suite: the
// names the tests use, with the password "pw-<name>".
func devOPUsers() []oxdtest.User {
	var us []oxdtest.User
	add := func(name string) {
		us = append(us, oxdtest.User{Subject: name, Username: name, Password: "pw-" + name,
			Claims: map[string]any{"email": name + "@example.test", "email_verified": true, "name": "User " + name}})
	}
	for i := range 600 {
		add(fmt.Sprintf("user%04d", i))
	}
	for _, n := range []string{"anon", "after-oxd-restart"} {
		add(n)
	}
	return us
}

// startStack starts a deployment against the certified OP (opEnv are its
// environment variables) or, when name is "devop", the development OP; when
// name is "cluster", the sessions live in a 3-primary Redis Cluster.
func startStack(t *testing.T, name string, opEnv ...string) *stack {
	t.Helper()
	requireTools(t)
	bin := binaries(t)
	art := harness.ArtifactsDir(t)
	logs := filepath.Join(art, "load-logs", name)
	os.RemoveAll(logs)
	env, err := load.NewEnv(logs, bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	s := &stack{env: env, tr: load.NewTransport(), record: filepath.Join(art, "load-"+name+".json")}
	t.Cleanup(s.tr.CloseIdleConnections)
	s.redis = redistest.StartWith(t, redistest.Options{Persist: true})
	if name == "devop" {
		s.op, err = env.StartDevOP(devOPUsers())
	} else {
		s.op, err = env.StartOP(ctx, opEnv...)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Debug logging everywhere (the secrets audit reads it), except for the
	// flood of scenario (g), where it would be most of the work.
	level := "debug"
	if name == "flood" {
		level = "info"
	}
	if s.oxd, err = env.StartOxd(ctx, s.redis.Addr(), level); err != nil {
		t.Fatal(err)
	}
	if s.rr, err = load.NewRoundRobin(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.rr.Close)
	s.site = filepath.Join(t.TempDir(), "site.json")
	if _, err := load.EnsureSite(ctx, s.oxd.Addr, s.site, s.op.Issuer, s.rr.URL); err != nil {
		t.Fatalf("EnsureSite: %v", err)
	}
	sessions := []string{"-redis", s.redis.Addr()}
	if name == "cluster" {
		s.cluster = redistest.StartClusterWith(t, redistest.ClusterOptions{Persist: true})
		sessions = []string{"-redis-cluster", strings.Join(s.cluster.Addrs(), ",")}
	}
	for _, n := range []string{"A", "B"} {
		a, err := env.StartApp(ctx, n, append(sessions, "-oxd", s.oxd.Addr, "-site-file", s.site,
			"-public-url", s.rr.URL, "-call-timeout", callTimeout.String(), "-log-level", level)...)
		if err != nil {
			t.Fatal(err)
		}
		s.apps = append(s.apps, a)
	}
	if err := s.rr.SetBackends(s.apps[0].URL, s.apps[1].URL); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *stack) browser(user string) *load.Browser {
	b := load.NewBrowser(s.tr, s.rr.URL, user, 60*time.Second)
	b.Driver = s.op.Login
	return b
}

// rec writes one line of figures and logs it.
func (s *stack) rec(t *testing.T, scenario string, fields map[string]any) {
	t.Helper()
	fields["scenario"] = scenario
	line, err := load.Record(s.record, fields)
	if err != nil {
		t.Error(err)
	}
	t.Logf("figures: %s", line)
}

// goroutines sums the goroutine counts of the replicas.
func (s *stack) goroutines(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := 0
	for _, a := range s.apps {
		g, err := a.Goroutines(ctx)
		if err != nil {
			t.Fatalf("goroutines of %s: %v", a.Name, err)
		}
		n += g
	}
	return n
}

// settledGoroutines waits until the replicas' goroutine count is at most
// limit (connections closing, timers firing) and returns the last count.
func (s *stack) settledGoroutines(t *testing.T, limit int, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := s.goroutines(t)
		if n <= limit || time.Now().After(deadline) {
			return n
		}
		s.tr.CloseIdleConnections()
		s.rr.CloseIdle()
		time.Sleep(250 * time.Millisecond)
	}
}

// loginAll logs every browser in concurrently, starting on one replica and
// finishing on the other (alternating). A lost login fails the test; the
// browsers that did sign in are returned, so that later scenarios still
// run (and measure) with them.
func (s *stack) loginAll(t *testing.T, bs []*load.Browser) (*load.Latencies, []*load.Browser) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lat := &load.Latencies{}
	var wg sync.WaitGroup
	errs := make(chan error, len(bs))
	in := make([]bool, len(bs))
	for i, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := b.Login(ctx, s.op.Issuer, i%2, 1-i%2)
			if err != nil {
				errs <- fmt.Errorf("%s: %w", b.User, err)
				return
			}
			if res.StartReplica == "" || res.StartReplica == res.FinishReplica {
				errs <- fmt.Errorf("%s: login started on %q and finished on %q", b.User, res.StartReplica, res.FinishReplica)
				return
			}
			in[i] = true
			lat.Add(res.Elapsed)
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n < 10 {
			t.Errorf("login lost: %v", err)
		}
		n++
	}
	if n > 0 {
		t.Errorf("%d of %d logins lost", n, len(bs))
	}
	var ok []*load.Browser
	for i, b := range bs {
		if in[i] {
			ok = append(ok, b)
		}
	}
	return lat, ok
}

// anonymousStatus is a fresh browser's navigation to a guarded page.
func (s *stack) anonymousStatus(ctx context.Context) (*load.Response, error) {
	return s.browser("anon").Get(ctx, "/private/anon", -1)
}

func isOPRedirect(r *load.Response, issuer string) bool {
	return r.Status == http.StatusSeeOther && strings.HasPrefix(r.Location, issuer+"/")
}

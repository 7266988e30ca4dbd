package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// gone reports whether no process with id pid exists any more.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestStartServesOnLoopbackAndStopsAtCleanup(t *testing.T) {
	var pid int
	var addr, dir string
	t.Run("inner", func(t *testing.T) {
		s := Start(t)
		pid, addr, dir = s.PID(), s.Addr(), s.Dir()
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Fatalf("Addr = %q, want 127.0.0.1:port", addr)
		}
		// Its own process group.
		pgid, err := syscall.Getpgid(pid)
		if err != nil || pgid != pid {
			t.Fatalf("pgid of %d = %d (%v), want its own group", pid, pgid, err)
		}
		rc := s.Client(t)
		ctx := ctxT(t)
		if err := rc.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := rc.Get(ctx, "k").Result(); err != nil || v != "v" {
			t.Fatalf("GET k = %q, %v", v, err)
		}
		cfg, err := rc.ConfigGet(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"save": "", "appendonly": "no", "bind": "127.0.0.1", "dir": dir, "protected-mode": "yes"} {
			if got := cfg[k]; got != want {
				t.Errorf("CONFIG %s = %q, want %q", k, got, want)
			}
		}
	})
	if !gone(pid) {
		t.Fatalf("redis-server pid %d still runs after the test ended", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("data dir %s still there after the test ended: %v", dir, err)
	}
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rc.Close()
	if err := rc.Ping(context.Background()).Err(); err == nil {
		t.Fatalf("%s still answers PING after the test ended", addr)
	}
}

func TestTwoServersAreSeparate(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() || a.Dir() == b.Dir() {
		t.Fatalf("two servers share %s/%s or %s/%s", a.Addr(), b.Addr(), a.Dir(), b.Dir())
	}
	ctx := ctxT(t)
	if err := a.Client(t).Set(ctx, "only-a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Client(t).Exists(ctx, "only-a").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS on b = %d, %v", n, err)
	}
}

func TestRestart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		persist bool
		kill    bool
	}{
		{"stop, nothing persisted", false, false},
		{"kill, nothing persisted", false, true},
		{"stop, persisted", true, false},
		{"kill, persisted", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := StartWith(t, Options{Persist: tc.persist})
			rc := s.Client(t)
			ctx := ctxT(t)
			if err := rc.Set(ctx, "k", "before", 0).Err(); err != nil {
				t.Fatal(err)
			}
			pid := s.PID()
			var err error
			if tc.kill {
				err = s.Kill()
			} else {
				err = s.Stop()
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Running() || !gone(pid) {
				t.Fatalf("pid %d still runs after Stop/Kill", pid)
			}
			down := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
			err = down.Ping(ctx).Err()
			down.Close()
			if err == nil {
				t.Fatal("PING answered while the server is down")
			}
			s.Restart(t)
			if s.PID() == pid || !s.Running() {
				t.Fatalf("Restart: pid %d, running %v", s.PID(), s.Running())
			}
			// The same client reconnects to the same port.
			v, err := rc.Get(ctx, "k").Result()
			if tc.persist {
				if err != nil || v != "before" {
					t.Fatalf("after restart GET k = %q, %v; want the value back", v, err)
				}
			} else if !errors.Is(err, redis.Nil) {
				t.Fatalf("after restart without persistence GET k = %q, %v; want nothing", v, err)
			}
		})
	}
}

func TestRestartOfARunningServerStopsItFirst(t *testing.T) {
	s := StartWith(t, Options{Persist: true})
	ctx := ctxT(t)
	if err := s.Client(t).Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pid := s.PID()
	s.Restart(t)
	if !gone(pid) {
		t.Fatalf("old pid %d still runs", pid)
	}
	if v, err := s.Client(t).Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET k = %q, %v", v, err)
	}
}

func TestStartWithArgs(t *testing.T) {
	s := StartWith(t, Options{Args: []string{"--maxmemory", "10mb", "--maxmemory-policy", "noeviction"}})
	cfg, err := s.Client(t).ConfigGet(ctxT(t), "maxmemory*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["maxmemory"] != "10485760" || cfg["maxmemory-policy"] != "noeviction" {
		t.Fatalf("CONFIG maxmemory* = %v", cfg)
	}
}

func TestCluster(t *testing.T) {
	var pids []int
	t.Run("inner", func(t *testing.T) {
		c := StartCluster(t)
		if len(c.Nodes()) != 3 || len(c.Addrs()) != 3 {
			t.Fatalf("%d nodes, want 3", len(c.Nodes()))
		}
		ctx := ctxT(t)
		for _, n := range c.Nodes() {
			pids = append(pids, n.PID())
			info, err := clusterInfo(ctx, n.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if info["cluster_state"] != "ok" || info["cluster_size"] != "3" {
				t.Fatalf("%s: CLUSTER INFO %v", n.Addr(), info)
			}
		}
		rc := c.Client(t)
		perNode := map[*Server]int{}
		for i := range 300 {
			k := fmt.Sprintf("key-%d", i)
			if err := rc.Set(ctx, k, k, 0).Err(); err != nil {
				t.Fatal(err)
			}
			perNode[c.NodeForKey(t, k)]++
		}
		// The keys landed where NodeForKey says, and on every primary.
		for _, n := range c.Nodes() {
			size, err := n.Client(t).DBSize(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if size == 0 || int(size) != perNode[n] {
				t.Fatalf("%s holds %d keys, NodeForKey says %d", n.Addr(), size, perNode[n])
			}
		}
	})
	for _, pid := range pids {
		if !gone(pid) {
			t.Fatalf("cluster node pid %d still runs after the test ended", pid)
		}
	}
}

// TestClusterPrimaryKilledAndRestarted is the "cluster primary killed"
// scenario: the slots of the killed primary fail, the cluster state turns
// to fail, and after a restart on the same port with its data the cluster
// is ok and the keys are back.
func TestClusterPrimaryKilledAndRestarted(t *testing.T) {
	c := StartClusterWith(t, ClusterOptions{Persist: true, NodeTimeout: 500 * time.Millisecond})
	rc := c.Client(t)
	ctx := ctxT(t)
	const key = "session-x"
	if err := rc.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	victim := c.NodeForKey(t, key)
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := rc.Get(short, key).Err()
	cancel()
	if err == nil {
		t.Fatal("GET of a key of the killed primary succeeded")
	}
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.WaitState(waitCtx, "fail"); err != nil {
		t.Fatal(err)
	}
	c.RestartNode(t, victim)
	// The client finds the node again (its connections were reset).
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := rc.Get(ctx, key).Result()
		if err == nil && v == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart GET %s = %q, %v", key, v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClusterNeedsThreePrimaries(t *testing.T) {
	// StartClusterWith fails the test; run it in a child test binary.
	if os.Getenv(childEnv) == "two" {
		StartClusterWith(t, ClusterOptions{Primaries: 2})
		return
	}
	out, failed := runChild(t, "^TestClusterNeedsThreePrimaries$", "two", os.Getenv("PATH"), "false")
	if !failed || !strings.Contains(out, "at least 3 primaries") {
		t.Fatalf("want a failure naming 3 primaries, failed=%v:\n%s", failed, out)
	}
}

const childEnv = "OXD_REDISTEST_CHILD"

// runChild runs this test binary on the tests matching run, with childEnv
// set to mode, PATH and CI as given; it returns the output and whether the
// child failed.
func runChild(t *testing.T, run, mode, path, ci string) (string, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.v", "-test.count=1")
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PATH=") && !strings.HasPrefix(e, "CI=") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, childEnv+"="+mode, "PATH="+path, "CI="+ci)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running the child test: %v", err)
	}
	return string(out), err != nil
}

// TestMissingBinaries runs Start and StartCluster in a child test binary
// whose PATH holds no redis-server (or no redis-cli): under CI the child
// fails, otherwise it skips with one line naming the program.
func TestMissingBinaries(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "single":
		Start(t)
		t.Log("after Start")
		return
	case "cluster":
		StartCluster(t)
		t.Log("after StartCluster")
		return
	}
	empty := t.TempDir()
	onlyServer := t.TempDir()
	serverBin, err := exec.LookPath("redis-server")
	if err == nil {
		if err := os.Symlink(serverBin, filepath.Join(onlyServer, "redis-server")); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		mode, path, missing string
		needReal            bool
	}{
		{"single", empty, "redis-server", false},
		{"cluster", empty, "redis-server", false},
		{"cluster", onlyServer, "redis-cli", true},
	} {
		if tc.needReal && err != nil {
			continue // covered by the first two cases
		}
		for _, ci := range []string{"true", "false"} {
			t.Run(tc.mode+" without "+tc.missing+" CI="+ci, func(t *testing.T) {
				out, failed := runChild(t, "^TestMissingBinaries$", tc.mode, tc.path, ci)
				want := "--- SKIP: TestMissingBinaries"
				if ci == "true" {
					want = "--- FAIL: TestMissingBinaries"
				}
				if failed != (ci == "true") || !strings.Contains(out, want) ||
					!strings.Contains(out, tc.missing+" (Debian package redis-server)") {
					t.Fatalf("failed=%v, want %q naming %s:\n%s", failed, want, tc.missing, out)
				}
				if strings.Contains(out, "after Start") {
					t.Fatalf("the child went on after the missing program:\n%s", out)
				}
			})
		}
	}
}

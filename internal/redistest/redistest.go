// Package redistest starts real Redis servers for tests: a single
// redis-server, or a Redis Cluster of several primaries, each on free
// 127.0.0.1 ports, with its data directory under t.TempDir().
//
// Every redis-server runs in its own process group, is stopped by its process
// id when the test ends (SIGTERM, then SIGKILL), and is killed by the kernel
// if the test binary dies first. Nothing is persisted unless the test asks for
// it (Options.Persist): then every write goes to an append-only file synced on
// each write, so that a node stopped or killed and started again on the same
// port (Server.Restart) comes back with its data, as in a "Redis restarted
// mid-run" scenario.
//
// A missing redis-server or redis-cli fails the test under CI and skips it
// elsewhere, with one line (internal/ciutil).
//
//	srv := redistest.Start(t)
//	rdb := srv.Client(t) // *redis.Client, closed when the test ends
//
//	cl := redistest.StartCluster(t) // 3 primaries, cluster_state:ok on all
//	rc := cl.Client(t)              // *redis.ClusterClient
//	n := cl.NodeForKey(t, "some-key")
//	n.Kill()                        // the primary serving that key dies
//	cl.RestartNode(t, n)            // same port, same data dir; waits for ok
//
// The package imports testing and is meant for tests only.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/internal/ciutil"
	"github.com/oxdgo/oxd/internal/proctest"
)

// StartTimeout bounds how long a redis-server may take to answer PING after
// it was started, and how long a Cluster may take to reach cluster_state:ok.
const StartTimeout = 30 * time.Second

// Options configure a single redis-server.
type Options struct {
	// Persist keeps the data across Stop, Kill and Restart: an append-only
	// file synced on every write (appendfsync always). Off by default:
	// nothing is written to disk (--save "" --appendonly no).
	Persist bool
	// Args are extra redis-server arguments, e.g. {"--maxmemory", "10mb"},
	// given after the helper's own (a later argument wins in redis-server):
	// they must not move the server off 127.0.0.1.
	Args []string
}

// Server is one redis-server process on 127.0.0.1. Its methods are safe for
// concurrent use.
type Server struct {
	name    string
	bin     string
	args    []string
	addr    string
	port    int
	busPort int // cluster bus port, 0 for a single node
	dir     string

	mu sync.Mutex
	p  *proctest.Proc
}

// Start starts a redis-server with default Options (nothing persisted) and
// waits until it answers PING.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith starts a redis-server configured by o and waits until it answers
// PING. It is stopped when the test ends.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin := need(t, "redis-server")
	return startServer(t, bin, o.Persist, 0, o.Args)
}

// startServer chooses free ports, starts the server and waits for PONG, with
// up to three attempts (another process may take a port between choosing it
// and the server binding it). nodeTimeout > 0 starts a cluster node.
func startServer(t testing.TB, bin string, persist bool, nodeTimeout time.Duration, extra []string) *Server {
	t.Helper()
	dir := t.TempDir() // removed after the server has stopped (cleanups run last-in first-out)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		n := 1
		if nodeTimeout > 0 {
			n = 2
		}
		ports, err := freePorts(n)
		if err != nil {
			t.Fatalf("redistest: no free port on 127.0.0.1: %v", err)
		}
		s := &Server{bin: bin, dir: dir, port: ports[0]}
		s.addr = "127.0.0.1:" + strconv.Itoa(s.port)
		s.name = "redis-server " + s.addr
		s.args = []string{
			"--port", strconv.Itoa(s.port),
			"--bind", "127.0.0.1",
			"--protected-mode", "yes",
			"--daemonize", "no",
			"--dir", dir,
			"--logfile", "",
			"--save", "",
		}
		if persist {
			s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
		} else {
			s.args = append(s.args, "--appendonly", "no")
		}
		if nodeTimeout > 0 {
			s.busPort = ports[1]
			s.args = append(s.args,
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-port", strconv.Itoa(s.busPort),
				"--cluster-node-timeout", strconv.FormatInt(nodeTimeout.Milliseconds(), 10),
			)
		}
		s.args = append(s.args, extra...)
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(func() {
				if err := s.Stop(); err != nil {
					t.Errorf("%v", err)
				}
				if t.Failed() {
					t.Logf("redistest: last output of %s:\n%s", s.name, s.Output())
				}
			})
			return s
		}
	}
	t.Fatalf("redistest: redis-server did not start: %v", lastErr)
	return nil
}

// start starts the process and waits for PONG; on failure the process is
// stopped again.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p != nil && s.p.Alive() {
		return fmt.Errorf("redistest: %s is running (pid %d)", s.name, s.p.PID())
	}
	p, err := startProc(s.name, s.bin, s.args)
	if err != nil {
		return fmt.Errorf("redistest: start %s: %w", s.name, err)
	}
	s.p = p
	if err := waitPong(p, s.addr, StartTimeout); err != nil {
		_ = p.Kill(stopTimeout)
		return err
	}
	return nil
}

// waitPong waits until addr answers PING with PONG (not LOADING, not an
// error) or the process exits.
func waitPong(p *proctest.Proc, addr string, timeout time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second, PoolSize: 1, Protocol: 2})
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if !p.Alive() {
			return fmt.Errorf("redistest: %s exited (%v): %s", p.Name(), p.Err(), lastLines(p.Output(), 5))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redistest: no PONG from %s after %v: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is the server's address, "127.0.0.1:port".
func (s *Server) Addr() string { return s.addr }

// Port is the server's port.
func (s *Server) Port() int { return s.port }

// Dir is the server's data directory (under the test's t.TempDir()).
func (s *Server) Dir() string { return s.dir }

// PID is the process id of the current redis-server process (a new one after
// Restart).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.PID()
}

// Running reports whether the current redis-server process has not exited.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.Alive()
}

// Output is the last lines the server printed (its log).
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p.Output()
}

// Stop shuts the server down gracefully (SIGTERM to its process group;
// SIGKILL if it has not exited after 10 s) and waits for it. Stopping a
// stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	return p.Stop(stopTimeout)
}

// Kill kills the server at once (SIGKILL to its process group, as a crash or
// an OOM kill would) and waits for it to be gone: clients see their
// connections reset and new connections refused.
func (s *Server) Kill() error {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	return p.Kill(stopTimeout)
}

// Restart starts the server again on the same port, with the same data
// directory and arguments, after Stop or Kill (it stops a running server
// gracefully first), and waits until it answers PING. The data is back only
// with Options.Persist (or for a cluster node, ClusterOptions.Persist); the
// cluster configuration (nodes.conf) always is. It fails the test if the port
// was taken in the meantime.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.start(); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

// Client returns a go-redis client of the server with default options,
// closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// need returns the path of the program name, or reports it missing through
// ciutil (a failure under CI, a skip elsewhere).
func need(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	ciutil.Need(t, name+" (Debian package redis-server)", err)
	return p
}

// freePorts returns n distinct TCP ports of 127.0.0.1 that were free a moment
// ago (all held open together while chosen, so they differ).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

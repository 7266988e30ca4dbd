package harness

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// RedisServerPath returns the path of redis-server, or reports it missing
// through Required.
func RedisServerPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		if fileExists("/usr/bin/redis-server") {
			return "/usr/bin/redis-server"
		}
		Required(t, "redis-server is not installed (Debian package redis-server)")
	}
	return p
}

// StartRedis starts a private redis-server on a free 127.0.0.1 port, with no
// persistence, waits until it answers PING, and stops it when the test ends.
// It returns the address, e.g. "127.0.0.1:40123".
func StartRedis(t testing.TB) (addr string) {
	t.Helper()
	bin := RedisServerPath(t)
	dir := t.TempDir() // removed after the server has stopped (cleanups run last-in first-out)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("e2e: no free port on 127.0.0.1: %v", err)
		}
		addr = "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(bin,
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--daemonize", "no",
			"--protected-mode", "yes",
			"--dir", dir,
			"--logfile", "",
		)
		proc := StartProcessGroup(t, "redis-server", cmd)
		lastErr = waitRedis(proc, addr, 15*time.Second)
		if lastErr == nil {
			return addr
		}
		// Most likely someone took the port between choosing and binding it.
		_ = proc.Stop()
	}
	t.Fatalf("e2e: redis-server did not start: %v", lastErr)
	return ""
}

func waitRedis(proc *ProcessGroup, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := RedisPing(context.Background(), addr)
		if err == nil {
			return nil
		}
		if !proc.Alive() {
			return fmt.Errorf("redis-server exited: %s", proc.Output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG from %s after %v: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RedisPing sends PING to the Redis server at addr and expects PONG.
func RedisPing(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("unexpected reply to PING: %q", line)
	}
	return nil
}

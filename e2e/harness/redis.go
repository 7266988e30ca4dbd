package harness

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/redistest"
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
// It returns the address, e.g. "127.0.0.1:40123". It is
// internal/redistest.Start, which also starts a Redis Cluster and restarts a
// server with its data.
func StartRedis(t testing.TB) (addr string) {
	t.Helper()
	return redistest.Start(t).Addr()
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

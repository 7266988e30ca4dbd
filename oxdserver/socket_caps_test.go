package oxdserver

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oxdgo/oxd/internal/syncbuf"
	"github.com/oxdgo/oxd/internal/testwait"
)

// dialFrom connects to addr from the loopback address src (127.0.0.0/8
// gives distinct source addresses on one host).
func dialFrom(t *testing.T, src, addr string) *testConn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &testConn{t: t, c: c, br: bufio.NewReader(c)}
}

// awaitConns waits until want tracked connections of srv that count
// towards the caps and are not being evicted satisfy ok (called under the
// connection's lock); what names the condition in the failure.
func awaitConns(t *testing.T, srv *SocketServer, want int, what string, ok func(cs *socketConn) bool) {
	t.Helper()
	srv.init() // Serve may not have started yet
	testwait.For(t, func() (bool, string) {
		n := 0
		srv.mu.Lock()
		for cs := range srv.conns {
			cs.mu.Lock()
			if cs.counted && !cs.evicting && ok(cs) {
				n++
			}
			cs.mu.Unlock()
		}
		srv.mu.Unlock()
		return n == want, fmt.Sprintf("%d connections %s, want %d", n, what, want)
	})
}

// awaitIdle waits until want tracked connections of srv wait idle for
// their next frame. The server marks a connection idle just after writing
// the answer its client has read, so the client's view alone does not say
// in which order connections became idle.
func awaitIdle(t *testing.T, srv *SocketServer, want int) {
	t.Helper()
	awaitConns(t, srv, want, "idle", func(cs *socketConn) bool { return cs.state == sockIdle })
}

// awaitReading waits until want tracked connections of srv are inside a
// frame, for longer than least when least is not zero. A client's write alone does not say when
// the server has seen the frame's first byte, which starts the frame's
// time.
func awaitReading(t *testing.T, srv *SocketServer, want int, least time.Duration) {
	t.Helper()
	awaitConns(t, srv, want, fmt.Sprintf("inside a frame for over %v", least), func(cs *socketConn) bool {
		return cs.state == sockReading && (least == 0 || time.Since(cs.readingSince) > least)
	})
}

// lockedLog is a concurrency-safe log sink.
type lockedLog = syncbuf.Buffer

// TestSocketIdleConnectionsCannotLockOut (server hardening, defect 3):
// connections that sent a command and stay idle fill MaxConns; new clients
// are still answered because the longest idle connections make room, with
// one rate-limited warning and the counters.
func TestSocketIdleConnectionsCannotLockOut(t *testing.T) {
	var logs lockedLog
	srv := &SocketServer{MaxConns: 8, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	addr := startSocket(t, srv, newFakeExec())
	var idle []*testConn
	for range 8 {
		c := dial(t, addr)
		c.send(`{"command":"echo","params":{}}`)
		if st, _ := c.read(); st != "ok" {
			t.Fatal(st)
		}
		idle = append(idle, c)
		awaitIdle(t, srv, len(idle)) // idle in the order they were answered
	}
	for i := range 8 {
		c := dial(t, addr)
		c.send(`{"command":"echo","params":{}}`)
		if st, _ := c.read(); st != "ok" {
			t.Fatalf("new client %d: %s", i, st)
		}
	}
	// The oldest idle connections were closed, first in first out.
	for _, c := range idle {
		c.expectClosed(10 * time.Second)
	}
	st := srv.Stats()
	if st.EvictedIdle != 8 || st.Rejected != 0 || st.Open > 8 {
		t.Fatalf("stats %+v", st)
	}
	if n := strings.Count(logs.String(), "connection cap reached"); n != 1 {
		t.Fatalf("%d cap warnings, want 1 (rate-limited):\n%s", n, logs.String())
	}

	// When every connection is busy, a new one is closed at once instead
	// of waiting.
	ex := newFakeExec()
	busy := &SocketServer{MaxConns: 2}
	baddr := startSocket(t, busy, ex)
	for range 2 {
		c := dial(t, baddr)
		c.send(`{"command":"slow","params":{}}`)
		<-ex.started
	}
	c := dial(t, baddr)
	c.expectClosed(10 * time.Second)
	if st := busy.Stats(); st.Rejected != 1 {
		t.Fatalf("stats %+v", st)
	}
	close(ex.release)
}

// TestSocketPerSourceLimit: one source address cannot take more than
// MaxConnsPerSource connections; its own longest idle one makes room, and
// other sources are not touched.
func TestSocketPerSourceLimit(t *testing.T) {
	srv := &SocketServer{MaxConnsPerSource: 2}
	addr := startSocket(t, srv, newFakeExec())
	other := dial(t, addr) // from 127.0.0.1
	other.send(`{"command":"echo","params":{}}`)
	other.read()
	awaitIdle(t, srv, 1)
	var mine []*testConn
	for i := range 3 {
		c := dialFrom(t, "127.0.0.2", addr)
		c.send(`{"command":"echo","params":{}}`)
		if st, _ := c.read(); st != "ok" {
			t.Fatal(st)
		}
		mine = append(mine, c)
		if i < 2 {
			awaitIdle(t, srv, 2+i) // idle in the order they were answered
		}
	}
	mine[0].expectClosed(10 * time.Second)
	other.send(`{"command":"echo","params":{}}`)
	if st, _ := other.read(); st != "ok" {
		t.Fatal("another source's connection was closed")
	}
	mine[2].send(`{"command":"echo","params":{}}`)
	if st, _ := mine[2].read(); st != "ok" {
		t.Fatal(st)
	}
	// The evicted connection's goroutine leaves the count when it has
	// finished, which a loaded machine may delay a little.
	deadline := time.Now().Add(10 * time.Second)
	for st := srv.Stats(); st.EvictedIdle != 1 || st.Open != 3; st = srv.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSocketConnectionCapLoad is a short, bounded load test (loopback
// only): 200 idle connections against a cap of 64, then 50 new clients
// that must all be answered within 10 seconds.
func TestSocketConnectionCapLoad(t *testing.T) {
	srv := &SocketServer{MaxConns: 64}
	addr := startSocket(t, srv, newFakeExec())
	deadline := time.Now().Add(10 * time.Second)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for range 200 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
			_ = c.SetDeadline(deadline)
			_, _ = c.Write([]byte(`0030{"command":"echo","params":{}}`))
			buf := make([]byte, 256)
			_, _ = c.Read(buf) // answered, or closed to make room
		}()
	}
	wg.Wait()
	start := time.Now()
	for i := range 50 {
		c := dial(t, addr)
		_ = c.c.SetDeadline(deadline)
		c.send(`{"command":"echo","params":{}}`)
		if st, _ := c.read(); st != "ok" {
			t.Fatalf("client %d: %s", i, st)
		}
	}
	if time.Now().After(deadline) {
		t.Fatal("load test exceeded its time bound")
	}
	st := srv.Stats()
	t.Logf("50 new clients answered in %v with 200 idle connections against a cap of 64; stats %+v", time.Since(start), st)
	if st.Open > 64 || st.EvictedIdle < 186 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSocketSlowFrameConnectionsCannotLockOut (slow-loris variant of
// defect 3): connections that send one byte of a frame and stall are not
// idle, so idle eviction alone never frees them; for ReadTimeout (30s by
// default) per frame they would hold every slot, and a client that
// finishes each frame just before the deadline holds it for ever. At the
// cap, a connection stuck inside a frame for longer than slowFrameGrace
// makes room like an idle one (idle ones first).
func TestSocketSlowFrameConnectionsCannotLockOut(t *testing.T) {
	srv := &SocketServer{MaxConns: 4, ReadTimeout: time.Minute}
	addr := startSocket(t, srv, newFakeExec())
	var slow []*testConn
	for range 4 {
		c := dial(t, addr)
		c.write("0") // first digit of a length prefix, then nothing
		slow = append(slow, c)
	}
	// Stuck for longer than the grace, counted from when the server saw
	// each frame's first byte.
	awaitReading(t, srv, 4, slowFrameGrace)
	for i := range 4 {
		c := dial(t, addr)
		_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
		c.send(`{"command":"echo","params":{}}`)
		if st, _ := c.read(); st != "ok" {
			t.Fatalf("new client %d: %q", i, st)
		}
	}
	for _, c := range slow {
		c.expectClosed(10 * time.Second)
	}
	if st := srv.Stats(); st.EvictedIdle != 4 || st.Rejected != 0 {
		t.Fatalf("stats %+v", st)
	}

	// A frame that is still arriving within the grace is not cut: the new
	// connection is refused instead.
	one := &SocketServer{MaxConns: 1, ReadTimeout: time.Minute}
	oaddr := startSocket(t, one, newFakeExec())
	fresh := dial(t, oaddr)
	fresh.write("00")
	awaitReading(t, one, 1, 0) // inside its frame, not idle
	extra := dial(t, oaddr)
	extra.expectClosed(10 * time.Second)
	fresh.write(`30{"command":"echo","params":{}}`)
	if st, _ := fresh.read(); st != "ok" {
		t.Fatalf("a frame inside the grace was cut: %q", st)
	}
	if st := one.Stats(); st.EvictedIdle != 0 || st.Rejected != 1 {
		t.Fatalf("stats %+v", st)
	}
}

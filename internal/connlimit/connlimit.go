// Package connlimit bounds the connections of an HTTP listener (the oxd
// HTTPS extension and the programs' metrics listeners) against idle and
// stalled (slow-loris) connections and running out of file descriptors.
package connlimit

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Listener bounds the connections of an HTTP listener. At the cap a
// connection that has not finished its TLS handshake and first request
// headers within StalledGrace (the oldest such one) is closed to make room,
// else the connection idle the longest (an HTTP keep-alive connection
// between requests, as reported by http.Server.ConnState); when there is
// none the new connection is closed at once. Accept errors
// from running out of file descriptors (EMFILE, ENFILE) are logged
// (rate-limited) and retried with a back-off instead of spinning. Serve
// it with an http.Server whose ConnState is the Listener's.
type Listener struct {
	net.Listener
	max  int
	log  *slog.Logger
	what string // the listener in warnings

	mu    sync.Mutex
	conns map[*capConn]struct{}

	evicted, rejected atomic.Uint64
	lastWarn          atomic.Int64
	sleep             func(time.Duration) // tests replace it
}

type capConn struct {
	net.Conn
	l         *Listener
	once      sync.Once
	idle      bool
	idleSince time.Time
	// fresh: no request yet (http.StateNew), since admitted.
	fresh    bool
	admitted time.Time
}

// StalledGrace: at the cap, a connection still without its first request
// (TLS handshake and headers) after this long makes room first. Without
// it, connections that open and send nothing hold their slots for the
// handshake timeout each, and an attacker who reconnects keeps every slot
// (slow-loris).
const StalledGrace = time.Second

func (c *capConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// New bounds ln to max connections; what names the listener in the
// warnings given to log (nil: silent).
func New(ln net.Listener, max int, what string, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Listener{Listener: ln, max: max, log: log, what: what, conns: map[*capConn]struct{}{}, sleep: time.Sleep}
}

// capWarnEvery rate-limits the warnings of the listener.
const capWarnEvery = 10 * time.Second

func (l *Listener) warn(msg string, args ...any) {
	msg = l.what + msg
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(capWarnEvery) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn(msg, args...)
}

func (l *Listener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.warn(": out of file descriptors or memory on accept; backing off (raise the descriptor limit or lower the connection caps)",
					"err", err.Error(), "retry_in", backoff)
				l.sleep(backoff)
				continue
			}
			return nil, err
		}
		backoff = 0
		if cc := l.admit(c); cc != nil {
			return cc, nil
		}
	}
}

// admit tracks c, making room at the cap; nil means c was closed.
func (l *Listener) admit(c net.Conn) *capConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && len(l.conns) >= l.max {
		var oldest *capConn
		now := time.Now()
		for cc := range l.conns {
			if cc.fresh && now.Sub(cc.admitted) > StalledGrace && (oldest == nil || !oldest.fresh || cc.admitted.Before(oldest.admitted)) {
				oldest = cc
			}
		}
		for cc := range l.conns {
			if oldest != nil && oldest.fresh {
				break
			}
			if cc.idle && (oldest == nil || cc.idleSince.Before(oldest.idleSince)) {
				oldest = cc
			}
		}
		if oldest == nil {
			l.rejected.Add(1)
			l.warn(" connection cap reached and no connection idle; refusing new connections", "max_conns", l.max)
			_ = c.Close()
			return nil
		}
		delete(l.conns, oldest)
		oldest.idle, oldest.fresh = false, false
		_ = oldest.Conn.Close()
		l.evicted.Add(1)
		l.warn(" connection cap reached; closing the longest idle connections", "max_conns", l.max)
	}
	cc := &capConn{Conn: c, l: l, fresh: true, admitted: time.Now()}
	l.conns[cc] = struct{}{}
	return cc
}

// ConnState is the http.Server ConnState hook: it records which
// connections are idle (between requests) and since when.
func (l *Listener) ConnState(c net.Conn, st http.ConnState) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	cc, ok := c.(*capConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if st != http.StateNew {
		cc.fresh = false
	}
	switch st {
	case http.StateIdle:
		cc.idle, cc.idleSince = true, time.Now()
	default:
		cc.idle = false
	}
}

// Open is the number of open connections.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

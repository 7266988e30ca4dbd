package oxdclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/oxdgo/oxd/internal/wire"
)

// SocketConfig configures a [Socket]. The zero value gives the defaults.
type SocketConfig struct {
	// PoolSize bounds the number of connections to oxd-server (in use and
	// idle). A caller that finds all of them busy waits for one, as long as
	// its context allows. Default 4.
	PoolSize int

	// DialTimeout bounds connecting. Default 5s.
	DialTimeout time.Duration

	// Timeout bounds one command: writing the request and reading the whole
	// answer. The context's deadline applies too, whichever is earlier.
	// oxd-server has no read timeout of its own and never gives up on a
	// command, so this is what keeps a stuck oxd from holding callers.
	// (A connection in steady use may keep the deadline of a command
	// issued up to Timeout/64 earlier.) Default 30s.
	Timeout time.Duration

	// IdleTimeout closes pooled connections that have not been used for
	// that long. Default 5m; negative keeps idle connections forever.
	IdleTimeout time.Duration

	// MaxAge, when positive, retires a connection once it is that old (it
	// is closed when it next becomes idle). Default 0: no age limit.
	MaxAge time.Duration

	// Dialer opens connections. Default: a net.Dialer. The address is the
	// one given to [NewSocket]; network is "tcp".
	Dialer func(ctx context.Context, network, address string) (net.Conn, error)
}

const (
	defaultPoolSize    = 4
	defaultDialTimeout = 5 * time.Second
	defaultTimeout     = 30 * time.Second
	defaultIdleTimeout = 5 * time.Minute
	readBufferSize     = 4096
	maxPooledFrame     = 64 << 10

	// aliveCheckIdle: a pooled connection idle for at least this long is
	// probed (one non-blocking read, a system call) before reuse. One used
	// more recently is not: oxd-server closes a connection only after the
	// generic internal_error (such connections are never pooled) or when it
	// stops, and a server that stopped within the last millisecond could
	// not take the command on a new connection either.
	aliveCheckIdle = time.Millisecond
)

// Socket is the transport of the oxd-server 3.1.x socket protocol: each
// command is one frame, a 4-digit length prefix counted in UTF-16 units and
// the JSON {"command","params"}, answered by one frame with the envelope
// {"status","data"}.
//
// Socket keeps a pool of persistent connections (oxd-server serves any
// number of commands on one connection, strictly one at a time) and sends
// one command at a time on each. It escapes non-ASCII characters as \uXXXX
// so that the byte length of a request is its UTF-16 length, refuses a
// request of more than 9999 units before writing anything ([ErrTooLarge]),
// and reads answers exactly, however they are split by TCP and whatever
// non-ASCII text they carry.
//
// A connection is discarded after EOF, a timeout, a malformed answer, or the
// generic internal_error after which oxd-server closes it. A connection
// that the server closed while it sat idle in the pool is detected before
// reuse (a non-blocking read sees the EOF, where a write would succeed and
// the command would be lost). A command is retried, once and on a fresh
// connection, only when not a single byte of it was written; a command
// whose bytes may have reached oxd is never resent, as commands such as
// register_site are not idempotent.
//
// A Socket is safe for concurrent use. Close it to release its connections.
type Socket struct {
	addr string
	cfg  SocketConfig
	dial func(ctx context.Context, network, address string) (net.Conn, error)

	slots chan struct{} // one token per connection a caller may hold
	done  chan struct{} // closed by Close

	tel socketTelemetry // set once by the first Client (telemetry.go)

	mu          sync.Mutex
	idle        []*sockConn            // LIFO: idle[len-1] is the most recently used
	conns       map[*sockConn]struct{} // every open connection, idle or in use
	closed      bool
	reaper      *time.Timer
	reaperArmed bool
}

// sockConn is one connection to oxd-server with its reusable buffers.
type sockConn struct {
	nc       net.Conn
	raw      syscall.RawConn  // for the liveness check; nil if unavailable
	check    func(fd uintptr) // raw.Control callback, built once
	isAlive  bool             // result of check
	probe    [1]byte          // check's read buffer
	deadline time.Time        // the connection's current I/O deadline
	br       *bufio.Reader
	rbuf     []byte
	created  time.Time
	lastUsed time.Time
}

// NewSocket returns a transport for the oxd-server socket at addr
// ("host:port", oxd's default is 127.0.0.1:8099). It does not connect:
// connections are opened on demand.
func NewSocket(addr string, cfg SocketConfig) (*Socket, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("oxdclient: invalid oxd-server address %q: %w", addr, err)
	}
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = defaultPoolSize
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	s := &Socket{
		addr:  addr,
		cfg:   cfg,
		dial:  cfg.Dialer,
		slots: make(chan struct{}, cfg.PoolSize),
		done:  make(chan struct{}),
		conns: make(map[*sockConn]struct{}),
	}
	if s.dial == nil {
		d := &net.Dialer{}
		s.dial = d.DialContext
	}
	return s, nil
}

// Addr returns the address of oxd-server.
func (s *Socket) Addr() string { return s.addr }

// frameBuf holds one encoded request frame.
type frameBuf struct {
	buf bytes.Buffer
	enc *json.Encoder
	tmp []byte // addTraceContext's scratch
}

var framePool = sync.Pool{New: func() any {
	f := &frameBuf{}
	f.enc = json.NewEncoder(&f.buf)
	f.enc.SetEscapeHTML(false)
	return f
}}

// encodeFrame writes the framed request {"command":…,"params":…} into f and
// returns the frame bytes (valid until f is reused). A non-empty tc (the
// caller's W3C trace context, see traceContextOf) is added as keys of the
// params object when params is an object and the frame still fits.
func encodeFrame(f *frameBuf, command string, params any, tc traceContext) ([]byte, error) {
	f.buf.Reset()
	f.buf.WriteString(`0000{"command":"`)
	f.buf.WriteString(command) // validated: [A-Za-z0-9_]
	f.buf.WriteString(`","params":`)
	if params == nil {
		f.buf.WriteString("{}")
	} else if err := f.enc.Encode(params); err != nil {
		return nil, err
	} else {
		f.buf.Truncate(f.buf.Len() - 1) // Encode's newline
	}
	f.buf.WriteByte('}')
	b := f.buf.Bytes()
	if esc := wire.EscapeNonASCII(b[wire.PrefixLen:]); len(esc) != len(b)-wire.PrefixLen {
		f.buf.Truncate(wire.PrefixLen)
		f.buf.Write(esc)
		b = f.buf.Bytes()
	}
	if tc.parent != "" {
		b = f.addTraceContext(b, len(`0000{"command":"`)+len(command)+len(`","params":`), tc)
	}
	n := len(b) - wire.PrefixLen // ASCII now: bytes = UTF-16 units
	if n > wire.MaxUnits {
		return nil, fmt.Errorf("%w: %d UTF-16 units", wire.ErrTooLarge, n)
	}
	b[0], b[1], b[2], b[3] = byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10)
	return b, nil
}

// validCommand reports whether command is a plausible oxd command name; it
// is written into the frame without escaping and into HTTPS paths.
func validCommand(command string) bool {
	if command == "" || len(command) > 64 {
		return false
	}
	for i := 0; i < len(command); i++ {
		c := command[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Do sends one command and decodes its answer; see [Transport].
func (s *Socket) Do(ctx context.Context, command string, params, result any) error {
	if !validCommand(command) {
		return transportErr(command, ErrProtocol, errors.New("invalid command name"), false)
	}
	f := framePool.Get().(*frameBuf)
	defer func() {
		if f.buf.Cap() <= maxPooledFrame { // do not keep the buffer of a huge rejected request
			framePool.Put(f)
		}
	}()
	frame, err := encodeFrame(f, command, params, traceContextOf(ctx))
	if err != nil {
		if errors.Is(err, wire.ErrTooLarge) {
			return transportErr(command, ErrTooLarge, err, false)
		}
		return transportErr(command, ErrProtocol, fmt.Errorf("cannot encode the parameters: %w", err), false)
	}

	if err := ctx.Err(); err != nil {
		return transportErr(command, ErrTimeout, err, false)
	}
	// Take a slot: at most PoolSize commands in flight, one per connection.
	st, waitHist := s.tel.forCall(ctx)
	var waitStart time.Time
	if st != nil || waitHist {
		waitStart = time.Now()
	}
	select {
	case s.slots <- struct{}{}:
	default:
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			s.tel.waited(ctx, st, waitHist, waitStart)
			return transportErr(command, ErrTimeout, fmt.Errorf("waiting for a free connection: %w", ctx.Err()), false)
		case <-s.done:
			return transportErr(command, ErrClosed, nil, false)
		}
	}
	defer func() { <-s.slots }()
	if st != nil || waitHist {
		s.tel.waited(ctx, st, waitHist, waitStart)
	}

	fresh := false
	for {
		c, err := s.conn(ctx, command, fresh)
		if err != nil {
			return err
		}
		payload, sent, reusable, err := s.roundTrip(ctx, c, command, frame)
		if err != nil {
			s.discard(c)
			if !sent && !fresh && ctx.Err() == nil && !s.isClosed() {
				// Not a byte reached oxd: safe to retry once on a new connection.
				fresh = true
				if st != nil {
					st.retries++
				}
				continue
			}
			return err
		}
		err = DecodeEnvelope(command, payload, result)
		if !reusable || (err != nil && !reuseAfter(err)) {
			s.discard(c)
		} else {
			s.put(c)
		}
		return err
	}
}

// reuseAfter reports whether a connection may carry another command after
// the answer err: oxd-server closes the connection after the generic
// internal_error, and a malformed answer leaves the stream in doubt.
func reuseAfter(err error) bool {
	var te *TransportError
	return !IsGenericInternalError(err) && !errors.As(err, &te)
}

// conn returns an idle connection that is still open, or a new one.
func (s *Socket) conn(ctx context.Context, command string, fresh bool) (*sockConn, error) {
	for !fresh {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, transportErr(command, ErrClosed, nil, false)
		}
		n := len(s.idle)
		if n == 0 {
			s.mu.Unlock()
			break
		}
		c := s.idle[n-1]
		s.idle[n-1] = nil
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		now := time.Now()
		if s.expired(c, now) || (now.Sub(c.lastUsed) >= aliveCheckIdle && !c.alive()) {
			s.discard(c)
			continue
		}
		return c, nil
	}
	return s.dialConn(ctx, command)
}

// alive reports whether an idle connection is still open (see fdAlive).
func (c *sockConn) alive() bool {
	if c.raw == nil {
		return true
	}
	c.isAlive = false
	if err := c.raw.Control(c.check); err != nil {
		return false
	}
	return c.isAlive
}

func (s *Socket) expired(c *sockConn, now time.Time) bool {
	if s.cfg.IdleTimeout > 0 && now.Sub(c.lastUsed) >= s.cfg.IdleTimeout {
		return true
	}
	return s.cfg.MaxAge > 0 && now.Sub(c.created) >= s.cfg.MaxAge
}

func (s *Socket) dialConn(ctx context.Context, command string) (*sockConn, error) {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	nc, err := s.dial(dctx, "tcp", s.addr)
	cancel()
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, transportErr(command, ErrTimeout, fmt.Errorf("connecting to oxd-server: %w", ctx.Err()), false)
		case ctxExpired(ctx):
			return nil, transportErr(command, ErrTimeout, fmt.Errorf("connecting to oxd-server: %w", context.DeadlineExceeded), false)
		case isTimeout(err):
			return nil, transportErr(command, ErrTimeout, err, false)
		}
		return nil, transportErr(command, ErrUnavailable, err, false)
	}
	now := time.Now()
	c := &sockConn{
		nc:       nc,
		br:       bufio.NewReaderSize(nc, readBufferSize),
		rbuf:     make([]byte, 0, 1024),
		created:  now,
		lastUsed: now,
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.check = func(fd uintptr) { c.isAlive = fdAlive(fd, &c.probe) }
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return nil, transportErr(command, ErrClosed, nil, false)
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return c, nil
}

// aLongTimeAgo is a deadline in the past: setting it interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes the frame and reads the answer's payload (valid until
// the connection is used again). sent reports whether any request byte may
// have reached oxd; reusable whether the connection may carry another
// command.
func (s *Socket) roundTrip(ctx context.Context, c *sockConn, command string, frame []byte) (payload []byte, sent, reusable bool, err error) {
	deadline := time.Now().Add(s.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// Re-arming the deadline costs two timer updates; a connection in
	// steady use keeps its deadline when it is at most Timeout/64 earlier
	// than this command's.
	if c.deadline.After(deadline) || deadline.Sub(c.deadline) > s.cfg.Timeout/64 {
		if err := c.nc.SetDeadline(deadline); err != nil {
			return nil, false, false, s.ioErr(ctx, command, err, false)
		}
		c.deadline = deadline
	}
	// Cancellation of ctx interrupts blocked I/O through the deadline.
	var stop func() bool
	if ctx.Done() != nil {
		nc := c.nc
		stop = context.AfterFunc(ctx, func() { _ = nc.SetDeadline(aLongTimeAgo) })
	}
	n, err := c.nc.Write(frame)
	sent = n > 0
	if err == nil {
		var units int
		units, err = wire.ReadPrefix(c.br)
		if err == nil {
			c.rbuf, err = wire.AppendPayload(c.rbuf[:0], c.br, units)
		}
	}
	// If the context fired, the connection's deadline may have been cut
	// short after the answer was read: the answer is good, the connection
	// is not reusable.
	fired := stop != nil && !stop()
	if err != nil {
		return nil, sent, false, s.ioErr(ctx, command, err, sent)
	}
	// oxd answers one frame per command: bytes after it mean the stream is
	// out of step, and the connection cannot be trusted.
	reusable = !fired && c.br.Buffered() == 0
	c.lastUsed = time.Now()
	return c.rbuf, true, reusable, nil
}

// ioErr classifies an I/O or framing error.
func (s *Socket) ioErr(ctx context.Context, command string, err error, sent bool) error {
	switch {
	case s.isClosed():
		return transportErr(command, ErrClosed, err, sent)
	case ctx.Err() != nil:
		return transportErr(command, ErrTimeout, ctx.Err(), sent)
	case isTimeout(err):
		if ctxExpired(ctx) { // the connection deadline was the context's
			return transportErr(command, ErrTimeout, context.DeadlineExceeded, sent)
		}
		return transportErr(command, ErrTimeout, fmt.Errorf("no complete answer within the deadline: %w", err), sent)
	case errors.Is(err, io.EOF):
		return transportErr(command, ErrUnavailable, errors.New("oxd-server closed the connection without answering"), sent)
	case errors.Is(err, wire.ErrTruncated):
		return transportErr(command, ErrProtocol, fmt.Errorf("oxd-server closed the connection inside an answer: %w", err), sent)
	case errors.Is(err, wire.ErrBadPrefix), errors.Is(err, wire.ErrEmpty), errors.Is(err, wire.ErrTooLarge):
		return transportErr(command, ErrProtocol, err, sent)
	}
	return transportErr(command, ErrUnavailable, err, sent)
}

// ctxExpired reports whether ctx's deadline has passed (its Err may not be
// set yet when a connection deadline equal to it fires first).
func ctxExpired(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// put returns a healthy connection to the pool.
func (s *Socket) put(c *sockConn) {
	if s.cfg.MaxAge > 0 && c.lastUsed.Sub(c.created) >= s.cfg.MaxAge {
		s.discard(c)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.nc.Close()
		return
	}
	s.idle = append(s.idle, c)
	if s.cfg.IdleTimeout > 0 && !s.reaperArmed {
		s.reaperArmed = true
		if s.reaper == nil {
			s.reaper = time.AfterFunc(s.cfg.IdleTimeout, s.reap)
		} else {
			s.reaper.Reset(s.cfg.IdleTimeout)
		}
	}
	s.mu.Unlock()
}

// discard closes a connection and forgets it.
func (s *Socket) discard(c *sockConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.nc.Close()
}

// reap closes idle connections unused for IdleTimeout and re-arms itself
// while idle connections remain.
func (s *Socket) reap() {
	now := time.Now()
	var stale []*sockConn
	s.mu.Lock()
	s.reaperArmed = false
	if s.closed {
		s.mu.Unlock()
		return
	}
	// idle is ordered by lastUsed, oldest first.
	k := 0
	for k < len(s.idle) && now.Sub(s.idle[k].lastUsed) >= s.cfg.IdleTimeout {
		k++
	}
	if k > 0 {
		stale = append(stale, s.idle[:k]...)
		for _, c := range stale {
			delete(s.conns, c)
		}
		n := copy(s.idle, s.idle[k:])
		clear(s.idle[n:])
		s.idle = s.idle[:n]
	}
	if len(s.idle) > 0 {
		s.reaperArmed = true
		s.reaper.Reset(s.idle[0].lastUsed.Add(s.cfg.IdleTimeout).Sub(now))
	}
	s.mu.Unlock()
	for _, c := range stale {
		_ = c.nc.Close()
	}
}

func (s *Socket) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Close closes every connection, including those carrying a command (whose
// callers get [ErrClosed]), and makes later calls fail with [ErrClosed]. It
// is idempotent. No goroutine of the Socket outlives it.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	conns := make([]*sockConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.idle = nil
	if s.reaper != nil {
		s.reaper.Stop()
	}
	s.mu.Unlock()
	s.tel.close()
	for _, c := range conns {
		_ = c.nc.Close()
	}
	return nil
}

var _ Transport = (*Socket)(nil)

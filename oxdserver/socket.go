package oxdserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oxdgo/oxd/internal/truncate"
	"github.com/oxdgo/oxd/internal/wire"
	"github.com/oxdgo/oxd/oxdclient"
)

// Defaults of SocketServer.
const (
	DefaultSocketAddr     = "127.0.0.1:8099"
	DefaultReadTimeout    = 30 * time.Second
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultWriteTimeout   = 30 * time.Second
	DefaultCommandTimeout = 60 * time.Second
	DefaultMaxConns       = 1024
	// DefaultMaxConnsPerSource bounds the connections from one source IP
	// address (loopback included: every local client shares 127.0.0.1).
	DefaultMaxConnsPerSource = 256
)

// ErrServerClosed is returned by SocketServer.Serve and ListenAndServe after
// Shutdown or Close.
var ErrServerClosed = errors.New("oxdserver: server closed")

// feExecutor runs one command; *Engine implements it. Tests substitute it.
type feExecutor interface {
	Execute(ctx context.Context, req Request) (any, error)
}

// SocketServer serves the oxd-server 3.1.x socket protocol (reference §1) on
// top of an [Engine]: each connection carries any number of commands in
// lock-step, every frame being a 4-digit UTF-16 unit count followed by the
// JSON text.
//
// Behaviour on bad input follows oxd-server 3.1.4 (reference §1.6):
//   - a length prefix that is not four digits, a 0000 prefix, a blank
//     command, end of stream inside a frame, a request larger than
//     MaxFrameUnits, or a frame not completed within ReadTimeout: the
//     connection is closed without a reply;
//   - invalid JSON, a top-level key other than "command" and "params", or a
//     non-string command name: the generic internal_error
//     ("Unknown internal server error occurs.") is answered and the
//     connection is closed. The connection is closed after every generic
//     internal_error, in both modes, whatever caused it (also an engine
//     failure or panic): a garbled envelope usually means the client
//     framed the text wrongly (a byte count instead of UTF-16 units), so the
//     stream cannot be trusted, and clients written for 3.1.4 discard the
//     connection after that answer anyway;
//   - an unknown command: unsupported_operation; a known command without a
//     params object: internal_error "Command parameters are not specified
//     or otherwise malformed." (both decided by the engine, which gets nil
//     Params); the connection is kept.
//
// Differences from 3.1.4 outside Quirks314 mode: frames that a client sends
// before reading the previous answer (pipelining) are answered in order
// instead of being dropped; a response longer than 9999 UTF-16 units is
// answered with internal_error "Response is too large for the oxd socket
// protocol …" (the connection stays usable) instead of a silent close;
// responses are written with every non-ASCII character escaped as \uXXXX,
// so that their byte length equals the announced unit count even for
// clients that count bytes (unless escaping alone would exceed the limit,
// then raw UTF-8 is written with the UTF-16 count); idle connections and
// half-sent frames are timed out.
//
// The zero value of every field but Engine is usable. A SocketServer must not
// be copied after first use.
type SocketServer struct {
	// Engine runs the commands. Required.
	Engine *Engine

	// MaxFrameUnits bounds a request frame in UTF-16 units (default and
	// maximum 9999). A larger request closes the connection unanswered.
	MaxFrameUnits int

	// ReadTimeout bounds the reading of one frame, from its first byte to
	// its last (default 30s). A negative value disables it.
	ReadTimeout time.Duration
	// IdleTimeout bounds the wait for the first byte of the next frame
	// (default 2m; 3.1.4 had none); the connection is then closed. Pooling
	// clients see the close before they reuse the connection (oxdclient's
	// Socket checks). A negative value disables it.
	IdleTimeout time.Duration
	// WriteTimeout bounds the writing of one response (default 30s). A
	// negative value disables it.
	WriteTimeout time.Duration
	// CommandTimeout bounds the execution of one command (default 60s). A
	// negative value disables it.
	CommandTimeout time.Duration

	// MaxConns bounds the number of open connections (default 1024). When
	// a new connection would exceed it, the connection that has been stuck
	// inside a half-received frame the longest (for over a second) is
	// closed to make room, else the one that has been idle (between
	// commands) the longest; when there is none, the new connection is
	// closed at once. Idle and stalled (slow-loris) connections thus cannot
	// lock new clients out. A negative value removes the limit.
	MaxConns int
	// MaxConnsPerSource bounds the connections from one source IP address
	// (default DefaultMaxConnsPerSource), with the same rule: the longest
	// idle connection of that source makes room, else the new one is
	// closed. A negative value removes the limit.
	MaxConnsPerSource int

	// RequireOperatorToken makes setup_client and register_site on this
	// listener need the engine's operator token (Config.OperatorToken),
	// refusing them while none is configured. For listeners that are not on
	// a loopback address.
	RequireOperatorToken bool

	// Quirks314 reproduces the documented oxd-server 3.1.4 behaviour for
	// testing clients: whatever arrived together with a frame (a pipelined
	// frame) is dropped, a response over 9999 units closes the connection
	// without a reply, and responses are written as raw UTF-8 (non-ASCII
	// not escaped) with the UTF-16 unit count. Never use it in production.
	Quirks314 bool

	// Logger receives connection and command events (command name,
	// duration, outcome code) at debug level and failures at warn/error.
	// It never receives parameters, answers or secrets. Nil: silent.
	Logger *slog.Logger

	exec feExecutor // tests replace the engine

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*socketConn]struct{}
	connWG    sync.WaitGroup
	shutdown  atomic.Bool
	done      chan struct{} // closed on Shutdown/Close
	baseCtx   context.Context
	cancel    context.CancelFunc
	perSource map[string]int // open tracked connections by source IP
	initOnce  sync.Once
	closeOnce sync.Once

	evicted, rejected atomic.Uint64
	lastCapWarn       atomic.Int64 // unix nanoseconds of the last cap warning
}

// SocketStats are counters of a SocketServer, for metrics (they can be
// published with expvar.Func).
type SocketStats struct {
	// Open is the number of open connections (not counting those being
	// closed to make room).
	Open int `json:"open"`
	// EvictedIdle counts idle (or stalled mid-frame) connections closed to
	// make room for a new one (MaxConns or MaxConnsPerSource reached).
	EvictedIdle uint64 `json:"evicted_idle"`
	// Rejected counts new connections closed at once because the cap was
	// reached and no connection was idle.
	Rejected uint64 `json:"rejected"`
}

// Stats returns the server's counters.
func (s *SocketServer) Stats() SocketStats {
	s.init()
	s.mu.Lock()
	n := 0
	for cs := range s.conns {
		cs.mu.Lock()
		if !cs.evicting {
			n++
		}
		cs.mu.Unlock()
	}
	s.mu.Unlock()
	return SocketStats{Open: n, EvictedIdle: s.evicted.Load(), Rejected: s.rejected.Load()}
}

type sockState int

const (
	sockIdle    sockState = iota // waiting for the first byte of a frame
	sockReading                  // inside a frame
	sockActive                   // executing a command or writing its answer
)

type socketConn struct {
	c         net.Conn
	source    string // remote IP ("" for ServeConn connections)
	counted   bool   // counts towards the caps
	mu        sync.Mutex
	state     sockState
	idleSince time.Time
	// readingSince: when the current frame's first byte arrived.
	readingSince time.Time
	evicting     bool // closed to make room; not a candidate again
}

// slowFrameGrace: at a cap, a connection that has been inside one frame
// for longer than this makes room first, before idle ones.
// Clients write a frame at once; without this, connections that send one
// byte of a frame and stall (and finish it just before ReadTimeout) would
// hold their slots for ever (slow-loris).
const slowFrameGrace = time.Second

func (s *SocketServer) init() {
	s.initOnce.Do(func() {
		s.listeners = map[*net.Listener]struct{}{}
		s.conns = map[*socketConn]struct{}{}
		s.done = make(chan struct{})
		s.baseCtx, s.cancel = context.WithCancel(context.Background())
		s.perSource = map[string]int{}
	})
}

func (s *SocketServer) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// connOpened adds n to the engine's count of open socket connections
// (metric oxd.server.connections).
func (s *SocketServer) connOpened(n int64) {
	if s.Engine != nil && s.Engine.tel != nil {
		s.Engine.tel.socketConns.Add(n)
	}
}

func (s *SocketServer) executorOrEngine() feExecutor {
	if s.exec != nil {
		return s.exec
	}
	if s.Engine == nil {
		return nil
	}
	return s.Engine
}

func (s *SocketServer) maxUnits() int {
	if s.MaxFrameUnits <= 0 || s.MaxFrameUnits > wire.MaxUnits {
		return wire.MaxUnits
	}
	return s.MaxFrameUnits
}

func (s *SocketServer) maxConns() int {
	switch {
	case s.MaxConns == 0:
		return DefaultMaxConns
	case s.MaxConns < 0:
		return 0
	}
	return s.MaxConns
}

func (s *SocketServer) maxPerSource() int {
	switch {
	case s.MaxConnsPerSource == 0:
		return DefaultMaxConnsPerSource
	case s.MaxConnsPerSource < 0:
		return 0
	}
	return s.MaxConnsPerSource
}

func feDurationOr(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func feDeadline(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// ListenAndServe listens on addr (DefaultSocketAddr when empty) and serves.
func (s *SocketServer) ListenAndServe(addr string) error {
	if addr == "" {
		addr = DefaultSocketAddr
	}
	if s.shutdown.Load() {
		return ErrServerClosed
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("oxdserver: listen %s: %w", addr, err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln and serves each in its own goroutine. It
// closes ln when it returns, which is after Shutdown or Close
// (ErrServerClosed) or on a permanent accept error. Serve may be called
// with several listeners.
func (s *SocketServer) Serve(ln net.Listener) error {
	s.init()
	if s.executorOrEngine() == nil {
		_ = ln.Close()
		return errors.New("oxdserver: SocketServer.Engine is nil")
	}
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[&ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, &ln)
		s.mu.Unlock()
		_ = ln.Close()
	}()
	s.log().Debug("oxd socket listening", "addr", ln.Addr().String())

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || feIsTemporary(err) ||
				errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors (EMFILE) and the like: back off
				// instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log().Warn("oxd socket accept failed; retrying", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.done:
					return ErrServerClosed
				}
				continue
			}
			return fmt.Errorf("oxdserver: accept: %w", err)
		}
		backoff = 0
		cs, ok := s.admit(c)
		if cs == nil {
			_ = c.Close()
			if !ok {
				return ErrServerClosed
			}
			continue
		}
		go s.serveConn(cs)
	}
}

// admit tracks a newly accepted connection, making room under MaxConns and
// MaxConnsPerSource by closing the longest idle connection (of the same
// source for the per-source cap). It returns nil when the connection must
// be closed (ok false: the server is shutting down).
func (s *SocketServer) admit(c net.Conn) (cs *socketConn, ok bool) {
	source := ""
	if a, isTCP := c.RemoteAddr().(*net.TCPAddr); isTCP {
		source = a.IP.String()
	} else if a := c.RemoteAddr(); a != nil {
		source = a.String()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return nil, false
	}
	capped := ""
	if n := s.maxPerSource(); n > 0 && s.perSource[source] >= n {
		if !s.evictIdleLocked(source) {
			s.rejected.Add(1)
			s.warnCap("per-source", source)
			return nil, true
		}
		capped = "per-source"
	}
	if n := s.maxConns(); n > 0 && s.countedLocked() >= n {
		if !s.evictIdleLocked("") {
			s.rejected.Add(1)
			s.warnCap("total", source)
			return nil, true
		}
		capped = "total"
	}
	if capped != "" {
		s.warnCap(capped, source)
	}
	cs = &socketConn{c: c, source: source, counted: true, state: sockIdle, idleSince: time.Now()}
	s.conns[cs] = struct{}{}
	s.connOpened(1)
	s.perSource[source]++
	s.connWG.Add(1)
	return cs, true
}

// countedLocked is the number of connections that count towards MaxConns
// and are not being evicted.
func (s *SocketServer) countedLocked() int {
	n := 0
	for cs := range s.conns {
		cs.mu.Lock()
		if cs.counted && !cs.evicting {
			n++
		}
		cs.mu.Unlock()
	}
	return n
}

// evictIdleLocked closes, of source when not empty, the connection that
// has been stuck inside a frame the longest (for over slowFrameGrace), else
// the one that has been idle the longest. It reports whether one was
// closed.
func (s *SocketServer) evictIdleLocked(source string) bool {
	now := time.Now()
	evictable := func(cs *socketConn) (bool, int, time.Time) {
		switch {
		case cs.evicting:
		case cs.state == sockIdle:
			return true, 1, cs.idleSince
		case cs.state == sockReading && now.Sub(cs.readingSince) > slowFrameGrace:
			return true, 0, cs.readingSince
		}
		return false, 0, time.Time{}
	}
	for range 3 { // a candidate may leave its state meanwhile
		var oldest *socketConn
		var since time.Time
		rank := 0
		for cs := range s.conns {
			if !cs.counted || (source != "" && cs.source != source) {
				continue
			}
			cs.mu.Lock()
			ok, r, t := evictable(cs)
			cs.mu.Unlock()
			if ok && (oldest == nil || r < rank || (r == rank && t.Before(since))) {
				oldest, since, rank = cs, t, r
			}
		}
		if oldest == nil {
			return false
		}
		oldest.mu.Lock()
		still, _, _ := evictable(oldest)
		if still {
			// Marked under its lock: enter refuses every further state, so
			// a command cannot start on it.
			oldest.evicting = true
		}
		oldest.mu.Unlock()
		if still {
			// The connection's goroutine sees the read fail and untracks it.
			_ = oldest.c.Close()
			s.evicted.Add(1)
			return true
		}
	}
	return false
}

// capWarnEvery rate-limits the warning logged when a cap is reached.
const capWarnEvery = 10 * time.Second

func (s *SocketServer) warnCap(which, source string) {
	now := time.Now().UnixNano()
	last := s.lastCapWarn.Load()
	if now-last < int64(capWarnEvery) || !s.lastCapWarn.CompareAndSwap(last, now) {
		return
	}
	s.log().Warn("oxd socket connection cap reached: closing the longest idle connection, or the new one when none is idle",
		"cap", which, "source", source, "max_conns", s.maxConns(), "max_conns_per_source", s.maxPerSource(),
		"evicted_idle_total", s.evicted.Load(), "rejected_total", s.rejected.Load())
}

func feIsTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// ServeConn serves one already accepted connection until it is closed and
// then closes it. It does not count towards MaxConns. It is useful with
// net.Pipe and custom listeners.
func (s *SocketServer) ServeConn(c net.Conn) {
	s.init()
	if s.executorOrEngine() == nil {
		_ = c.Close()
		return
	}
	cs, ok := s.track(c)
	if !ok {
		_ = c.Close()
		return
	}
	s.serveConn(cs)
}

func (s *SocketServer) track(c net.Conn) (*socketConn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return nil, false
	}
	cs := &socketConn{c: c, state: sockIdle}
	s.conns[cs] = struct{}{}
	s.connOpened(1)
	s.connWG.Add(1)
	return cs, true
}

func (s *SocketServer) untrack(cs *socketConn) {
	s.mu.Lock()
	delete(s.conns, cs)
	s.connOpened(-1)
	if cs.counted {
		if s.perSource[cs.source]--; s.perSource[cs.source] <= 0 {
			delete(s.perSource, cs.source)
		}
	}
	s.mu.Unlock()
	s.connWG.Done()
}

// enter moves the connection to state st with read deadline dl, unless the
// server is shutting down and st is not sockActive (then it reports
// false). Shutdown relies on this being atomic with its own check.
func (s *SocketServer) enter(cs *socketConn, st sockState, dl time.Time) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if st != sockActive && s.shutdown.Load() {
		return false
	}
	if cs.evicting {
		return false
	}
	cs.state = st
	switch st {
	case sockIdle:
		cs.idleSince = time.Now()
	case sockReading:
		cs.readingSince = time.Now()
	}
	if st != sockActive {
		_ = cs.c.SetReadDeadline(dl)
	}
	return true
}

func (s *SocketServer) serveConn(cs *socketConn) {
	c := cs.c
	defer func() {
		_ = c.Close()
		s.untrack(cs)
	}()
	lg := s.log()
	remote := ""
	if a := c.RemoteAddr(); a != nil {
		remote = a.String()
	}
	lg.Debug("oxd socket connection opened", "remote", remote)
	br := bufio.NewReaderSize(c, 8192)
	readTimeout := feDurationOr(s.ReadTimeout, DefaultReadTimeout)
	idleTimeout := feDurationOr(s.IdleTimeout, DefaultIdleTimeout)
	writeTimeout := feDurationOr(s.WriteTimeout, DefaultWriteTimeout)
	var out []byte
	for {
		if !s.enter(cs, sockIdle, feDeadline(idleTimeout)) {
			return
		}
		if _, err := br.Peek(1); err != nil {
			lg.Debug("oxd socket connection closed", "remote", remote, "reason", feCloseReason(err, "idle"))
			return
		}
		if !s.enter(cs, sockReading, feDeadline(readTimeout)) {
			lg.Debug("oxd socket connection closed", "remote", remote, "reason", "shutdown")
			return
		}
		units, err := wire.ReadPrefix(br)
		if err == nil && units > s.maxUnits() {
			err = wire.ErrTooLarge
		}
		var payload []byte
		if err == nil {
			payload, err = wire.ReadPayload(br, units)
		}
		if err != nil {
			lg.Debug("oxd socket connection closed without reply", "remote", remote, "reason", feCloseReason(err, "frame"))
			return
		}
		if s.Quirks314 {
			// 3.1.4 loses whatever was read together with the frame.
			if n := br.Buffered(); n > 0 {
				_, _ = br.Discard(n)
				lg.Debug("oxd socket dropped pipelined bytes (3.1.4 quirk)", "remote", remote, "bytes", n)
			}
		}
		if !s.enter(cs, sockActive, time.Time{}) {
			return // evicted while the frame arrived
		}
		resp, closeAfter := s.process(payload, remote)
		if resp != nil {
			out, err = s.frame(out[:0], resp)
			if err != nil {
				lg.Warn("oxd socket response too large; closing without reply (3.1.4 quirk)", "remote", remote)
				return
			}
			_ = c.SetWriteDeadline(feDeadline(writeTimeout))
			// One write: some clients (oxd-node) parse the first chunk.
			if _, err := c.Write(out); err != nil {
				lg.Debug("oxd socket write failed", "remote", remote, "err", err)
				return
			}
		}
		if closeAfter {
			lg.Debug("oxd socket connection closed after the generic internal error", "remote", remote)
			return
		}
		if cap(out) > 64<<10 {
			out = nil
		}
	}
}

func feCloseReason(err error, phase string) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		if phase == "idle" {
			return "idle timeout or shutdown"
		}
		return "read timeout inside a frame"
	case errors.Is(err, wire.ErrBadPrefix):
		return "bad length prefix"
	case errors.Is(err, wire.ErrEmpty):
		return "empty frame"
	case errors.Is(err, wire.ErrTooLarge):
		return "frame too large"
	case errors.Is(err, wire.ErrTruncated):
		return "stream ended inside a frame"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	if phase == "idle" {
		return "end of stream"
	}
	return err.Error()
}

// frame frames resp. Outside Quirks314 mode non-ASCII is escaped when the
// escaped text fits; a response that does not fit is replaced by the
// too-large error. In Quirks314 mode the raw text is framed, and a response
// that does not fit is an error (close without reply).
func (s *SocketServer) frame(dst, resp []byte) ([]byte, error) {
	if !s.Quirks314 {
		if f, err := wire.AppendFrame(dst, wire.EscapeNonASCII(resp)); err == nil {
			return f, nil
		}
	}
	f, err := wire.AppendFrame(dst, resp)
	if err == nil || s.Quirks314 {
		return f, err
	}
	s.log().Warn("oxd socket response too large; answering an error")
	return wire.AppendFrame(dst, feEncodeError(&oxdclient.Error{Code: oxdclient.CodeInternalError, Description: feDescResponseTooLarge}))
}

// process runs one frame's command and returns the JSON answer (nil for no
// answer) and whether to close the connection afterwards.
func (s *SocketServer) process(payload []byte, remote string) (resp []byte, closeAfter bool) {
	lg := s.log()
	cmd, err := feDecodeCommand(payload)
	switch {
	case errors.Is(err, errFEBlankCommand):
		lg.Debug("oxd socket blank command; closing", "remote", remote)
		return nil, true
	case err != nil:
		lg.Debug("oxd socket malformed command feEnvelope", "remote", remote)
		return []byte(feGenericInternalError), true
	}
	start := time.Now()
	var oerr *oxdclient.Error
	var data any
	// The engine decides what is unknown (unsupported_operation) and what
	// lacks parameters (nil Params), in the order of 3.1.4.
	ctx, cancel := s.commandContext()
	// The caller's trace context travels inside params (see
	// traceFromParams).
	ctx = traceFromParams(ctx, cmd.Params)
	data, oerr = feRunCommand(ctx, s.executorOrEngine(), Request{Command: cmd.Name, Params: cmd.Params, requireOperator: s.RequireOperatorToken, listener: listenerSocket}, lg)
	cancel()
	if oerr == nil {
		resp, err = feEncodeOK(data)
		if err != nil {
			lg.Error("oxd command answer cannot be encoded", "command", cmd.Name, "err", err)
			oerr = &oxdclient.Error{Code: oxdclient.CodeInternalError, Description: oxdclient.DescInternalErrorUnknown}
		}
	}
	outcome := "ok"
	if oerr != nil {
		outcome = oerr.Code
		resp = feEncodeError(oerr)
		closeAfter = feIsGenericInternalError(oerr)
	}
	lg.Debug("oxd command", "transport", "socket", "command", feLogName(cmd.Name), "outcome", outcome, "duration", time.Since(start))
	return resp, closeAfter
}

func (s *SocketServer) commandContext() (context.Context, context.CancelFunc) {
	if d := feDurationOr(s.CommandTimeout, DefaultCommandTimeout); d > 0 {
		return context.WithTimeout(s.baseCtx, d)
	}
	return context.WithCancel(s.baseCtx)
}

// feLogName keeps attacker-chosen command names short in logs.
func feLogName(n string) string { return truncate.String(n, 64) }

// feRunCommand executes req and turns every failure into an oxd error: an
// *oxdclient.Error is passed on, anything else (including a panic) becomes
// the generic internal error.
func feRunCommand(ctx context.Context, ex feExecutor, req Request, lg *slog.Logger) (data any, oerr *oxdclient.Error) {
	defer func() {
		if r := recover(); r != nil {
			lg.Error("oxd command panicked", "command", feLogName(req.Command), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			data, oerr = nil, &oxdclient.Error{Code: oxdclient.CodeInternalError, Description: oxdclient.DescInternalErrorUnknown}
		}
	}()
	data, err := ex.Execute(ctx, req)
	if err == nil {
		return data, nil
	}
	var e *oxdclient.Error
	if errors.As(err, &e) && e.Code != "" {
		return nil, e
	}
	lg.Warn("oxd command failed", "command", feLogName(req.Command), "err", err)
	return nil, &oxdclient.Error{Code: oxdclient.CodeInternalError, Description: oxdclient.DescInternalErrorUnknown}
}

// Shutdown stops the server gracefully: it closes the listeners, closes
// idle connections and connections inside a half-received frame, lets the
// commands in progress finish and answer, then closes their connections.
// It returns when every connection is closed, or with ctx's error when ctx
// ends first (the remaining connections are then left to finish; call
// Close to cut them).
func (s *SocketServer) Shutdown(ctx context.Context) error {
	s.init()
	s.beginShutdown()
	// Wake connections that wait for input; active ones check the flag
	// before their next read.
	s.mu.Lock()
	for cs := range s.conns {
		cs.mu.Lock()
		if cs.state != sockActive {
			_ = cs.c.SetReadDeadline(time.Unix(1, 0))
		}
		cs.mu.Unlock()
	}
	s.mu.Unlock()
	idle := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once, cancelling the
// commands in progress.
func (s *SocketServer) Close() error {
	s.init()
	s.beginShutdown()
	// Connections first, then the commands: a cancelled command must not
	// get its error answer out before its connection is cut.
	s.mu.Lock()
	for cs := range s.conns {
		_ = cs.c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	return nil
}

func (s *SocketServer) beginShutdown() {
	s.mu.Lock()
	s.shutdown.Store(true)
	for ln := range s.listeners {
		_ = (*ln).Close()
	}
	s.mu.Unlock()
	s.closeOnce.Do(func() { close(s.done) })
}

// Package oxdclient is a typed client for every command of oxd-server 3.1.x
// (the Gluu oxd mediator), over the socket protocol ([NewSocket]), the
// oxd-https-extension ([NewHTTPS]), or in-process through an engine from
// package oxdserver.
//
// Each command is a method of [Client] that takes a context and a params
// struct whose JSON field names are oxd's wire names, and returns the typed
// answer. An oxd error answer is an [*Error] (errors.As), with predicates
// for the codes callers branch on ([IsNeedInfo], [IsStateNotRegistered],
// [IsProtectionTokenError], …); a failure to reach oxd is a
// [*TransportError] that wraps [ErrUnavailable], [ErrTimeout],
// [ErrProtocol], [ErrTooLarge] or [ErrClosed].
//
// # Transports
//
// The socket transport speaks oxd-server's framing exactly: a 4-digit
// length prefix counted in UTF-16 units (requests are ASCII-escaped so that
// bytes and units agree, answers are read as UTF-8 and counted in units), a
// 9999-unit limit checked before anything is sent, one command at a time
// per connection, and a bounded pool of persistent connections. A command
// is retried on a new connection only when none of its bytes was written.
//
//	socket, err := oxdclient.NewSocket("127.0.0.1:8099", oxdclient.SocketConfig{})
//	if err != nil { … }
//	client := oxdclient.New(socket, oxdclient.Config{})
//	defer client.Close()
//
// The HTTPS transport posts the bare params to <base>/<command-with-dashes>
// with the protection token as "Authorization: Bearer", verifies TLS
// certificates, and maps the extension's own error bodies to typed errors.
//
//	https, err := oxdclient.NewHTTPS("https://127.0.0.1:8443", oxdclient.HTTPSConfig{HTTPClient: trusting})
//
// # Protection tokens
//
// oxd-server can require a protection access token on every command about
// a site (the HTTPS extension always does). A client with the setup
// client's credentials obtains tokens with get_client_token (scope "oxd"
// included), caches them until shortly before they expire, shares one
// refresh among concurrent callers, and retries a command once when oxd
// rejects its token as blank, invalid or inactive.
//
// The one way to give a client these credentials, which also works on a
// first run when the site does not exist yet: create the client without
// them and call [EnsureSite], which installs the site's credentials. Only
// credentials that exist before the site (an operator-provided setup
// client, for [EnsureRegisteredSite] on a protected oxd) go into
// [Config.Protection].
//
// # One-time site setup
//
// [EnsureSite] runs setup_client on the first start and keeps the result
// in a file (mode 0600) that later starts read. A file that no longer
// matches (another op_host or redirect URI, an oxd_id oxd does not know)
// gives a [*SiteMismatchError] that names the file and the fix, or is
// replaced with [ReRegisterOnMismatch].
//
// # Calling a UMA-protected API
//
// Package [github.com/oxdgo/oxd/oxdclient/umaclient] parses a UMA 2.0
// challenge and obtains an RPT, through oxd or directly at the
// authorization server.
//
// # Telemetry
//
// With [Config].TracerProvider (or a global provider installed by the
// application) every command is a client span "oxd <command>" with the
// attributes oxd.command, oxd.transport ("socket", "https", "inprocess"
// for the engine of package oxdserver, "custom"), oxd.result ("ok", the
// oxd error code — "unknown_code" for a code this package does not
// know — or "unavailable", "timeout", "protocol", "too_large", "closed",
// "canceled"), oxd.retries, and oxd.pool.wait (seconds waited for a
// socket connection); a failure sets error.type to the same code and an
// error status, never the error's message. With [Config].MeterProvider
// the client records oxd.client.command.duration (seconds, by oxd.command,
// oxd.transport and oxd.result) and, for a [Socket] (instrumented once, by
// the first Client created on it), oxd.client.pool.connections (state
// in_use or idle) and oxd.client.pool.wait.duration. Nil providers mean
// the global ones; while the application has installed none, nothing is
// started or recorded.
//
// Trace context: when the context of a command carries a valid span, the
// HTTPS transport sends the W3C traceparent and tracestate headers
// (propagation.TraceContext, whatever the global propagator is), and the
// socket transport puts "traceparent" (and "tracestate") as keys inside
// the command's params object. oxd-server 3.1.4 ignores unknown params
// keys (an unknown top-level key would make it fail and close the
// connection), so this is safe with any 3.1.x server; the engine of
// package oxdserver continues the trace from them. The keys are left out
// when the frame would exceed 9999 units with them, and a tracestate over
// 512 characters is never sent.
//
// # Secrets
//
// Credentials are [Secret] values: they print as "[REDACTED]" with any fmt
// verb and in slog, so errors and logs cannot leak them. The optional
// [Config.Logger] receives command names, durations and outcome codes,
// never parameters or answers. Nothing is logged by default.
package oxdclient

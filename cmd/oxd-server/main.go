// Command oxd-server is a Go drop-in for Gluu oxd-server 3.1.x: it serves
// the oxd socket protocol (default 127.0.0.1:8099) and the
// oxd-https-extension protocol from the oxdserver engine, which performs
// OpenID Connect and UMA 2.0 against any OP.
//
// Usage:
//
//	oxd-server [flags]
//
//	-listen 127.0.0.1:8099     socket protocol address ("" disables it)
//	-https-listen ADDR         HTTPS-extension address, e.g. 127.0.0.1:8443 ("" disables it)
//	-tls-cert FILE -tls-key FILE
//	                           certificate for the HTTPS extension; without them a
//	                           self-signed ECDSA certificate for 127.0.0.1, ::1 and
//	                           localhost is generated at start and its SHA-256
//	                           fingerprint printed
//	-tls-cert-out FILE         write the generated certificate (PEM) there, for
//	                           clients to trust it
//	-store memory|file:PATH|redis://…
//	                           where sites, states and nonces live (default memory);
//	                           a file keeps sites across restarts, Redis shares
//	                           them (and states, nonces) between several servers
//	-redis-prefix oxd:         prefix of every Redis key
//	-protect-socket            require protection access tokens on the socket
//	                           (default false, as oxd-server ships)
//	-https-protect             require them on the HTTPS extension (default true)
//	-dev-op                    start the development OP (package devop) on a
//	                           loopback port and print its issuer
//	-log-level debug|info|warn|error
//	-shutdown-timeout 30s      how long SIGTERM/SIGINT waits for commands in flight
//
// Logs go to stderr (log/slog text). They never contain parameters, answers,
// tokens or secrets. SIGTERM or SIGINT stops both listeners gracefully; the
// exit status is then 0.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

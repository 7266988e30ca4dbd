// Package pprofhook serves net/http/pprof on a loopback address for the
// benchmarks, in binaries built with the build tag oxdprofile only:
//
//	go build -tags oxdprofile ./cmd/oxd-server
//	OXD_PPROF_ADDR=127.0.0.1:0 ./oxd-server …
//
// prints "pprof listening on http://127.0.0.1:PORT" on stderr (and, with
// OXD_PPROF_DIR set, writes the address and the command line to
// <dir>/<pid>.addr). Without the tag the package is empty and links
// nothing: release builds of cmd/oxd-server never serve profiles. An
// address that is not on loopback is refused.
package pprofhook

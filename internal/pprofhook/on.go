//go:build oxdprofile

package pprofhook

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func init() {
	addr := os.Getenv("OXD_PPROF_ADDR")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "pprofhook: OXD_PPROF_ADDR %q is not a loopback host:port; not serving profiles\n", addr)
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pprofhook: %v\n", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "pprof listening on http://%s\n", ln.Addr())
	// OXD_PPROF_DIR: also leave the address, and the command line that
	// tells the processes apart, in <dir>/<pid>.addr.
	if dir := os.Getenv("OXD_PPROF_DIR"); dir != "" {
		line := fmt.Sprintf("http://%s %s\n", ln.Addr(), strings.Join(os.Args, " "))
		_ = os.WriteFile(filepath.Join(dir, strconv.Itoa(os.Getpid())+".addr"), []byte(line), 0o600)
	}
}

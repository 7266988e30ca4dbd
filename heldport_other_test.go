//go:build !unix

package oxd

import (
	"net"
	"testing"

	"github.com/oxdgo/oxd/internal/ciutil"
)

// heldPort, where a port cannot be held without listening, is a freed
// loopback port taken back by listen.
type heldPort struct{ addr string }

func newHeldPort(t *testing.T) *heldPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return &heldPort{addr: addr}
}

func (p *heldPort) listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	ciutil.Need(t, "the freed port "+p.addr, err)
	return ln
}

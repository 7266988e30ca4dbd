//go:build unix

package oxd

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// heldPort is a loopback TCP port the test owns without listening on it:
// a connection to it is refused, as to an oxd that is down, until listen
// starts listening on the very same socket, as oxd coming back. The port
// is never released in between, so no other process can take it and the
// test never has to win it back.
type heldPort struct {
	fd   int
	addr string
}

func newHeldPort(t *testing.T) *heldPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &heldPort{fd: fd}
	t.Cleanup(func() {
		if p.fd >= 0 {
			_ = syscall.Close(p.fd)
		}
	})
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	p.addr = "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	return p
}

// listen starts listening on the held port and returns the listener,
// which owns the socket from then on.
func (p *heldPort) listen(t *testing.T) net.Listener {
	t.Helper()
	if err := syscall.Listen(p.fd, syscall.SOMAXCONN); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(p.fd), "held-port")
	p.fd = -1
	ln, err := net.FileListener(f) // duplicates the descriptor
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ln.Addr().String() != p.addr {
		t.Fatalf("listening on %s, want %s", ln.Addr(), p.addr)
	}
	return ln
}

//go:build unix

package oxdclient

import (
	"errors"
	"syscall"
)

// fdAlive reports whether an idle pooled connection is still open, with
// one non-blocking read on the socket: EOF means the server closed it (as
// oxd-server does after the generic internal_error, or when it stops),
// data means the stream is out of step, EAGAIN means alive. A write to a
// connection that the peer has closed can succeed, so this is the only way
// to learn, before sending a command, that it would be lost.
func fdAlive(fd uintptr, buf *[1]byte) bool {
	n, err := syscall.Read(int(fd), buf[:])
	return n < 0 && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK))
}

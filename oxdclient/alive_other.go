//go:build !unix

package oxdclient

import "syscall"

// connAlive cannot check without a non-blocking read on this platform; a
// closed connection is then found when the answer does not come (and the
// command is not resent).
func connAlive(syscall.RawConn) bool { return true }

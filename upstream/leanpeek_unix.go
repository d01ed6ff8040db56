//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package upstream

import (
	"errors"
	"syscall"
)

// alive reports whether an idle connection looks usable: the upstream has
// neither closed it nor sent anything unasked. It peeks at the socket
// without blocking and without taking what it finds.
func (pc *leanConn) alive() bool {
	sc, ok := pc.conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var (
		n    int
		perr error
	)
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait
	})
	// Nothing to read is the healthy answer; a byte (unasked data), zero
	// bytes (the upstream closed it) or another error is not.
	return err == nil && n <= 0 && (errors.Is(perr, syscall.EAGAIN) || errors.Is(perr, syscall.EWOULDBLOCK))
}

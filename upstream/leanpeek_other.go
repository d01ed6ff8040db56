//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package upstream

// alive reports whether an idle connection looks usable. Where the socket
// cannot be peeked at without blocking it says yes: a replayable request
// that finds the connection closed is still sent again on a new one.
func (pc *leanConn) alive() bool { return true }

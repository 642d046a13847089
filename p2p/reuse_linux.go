package p2p

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort lets a listening socket and the sockets dialled from its port
// share it (SO_REUSEADDR, SO_REUSEPORT): a hole-punching dial must leave
// from the listen port, whose NAT mapping the peer was told.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// canReusePort says whether reusePort works on this system.
const canReusePort = true

//go:build !linux

package p2p

import (
	"errors"
	"syscall"
)

// reusePort is not implemented here: TCP.ReusePort is ignored and hole
// punching dials from ephemeral ports (it then rarely succeeds).
func reusePort(_, _ string, _ syscall.RawConn) error {
	return errors.New("SO_REUSEPORT is only used on linux")
}

const canReusePort = false

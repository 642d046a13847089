//go:build linux

package mdns

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
)

// A netns is a fresh network namespace whose only interface is a loopback
// with multicast on. Sockets opened inside it (in do) stay in it, so the
// tests never touch the machine's own interfaces.
type netns struct{ reqs chan func() }

// newNetns makes a namespace for the test; it skips only when not root.
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs mDNS in a new network namespace with multicast on its loopback")
	}
	n := &netns{reqs: make(chan func())}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, so no other
		// goroutine ever runs in the namespace by accident.
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		// Forked from this thread, ip runs in the new namespace.
		if out, err := exec.Command("ip", "link", "set", "lo", "up", "multicast", "on").CombinedOutput(); err != nil {
			errc <- &exec.ExitError{Stderr: out}
			return
		}
		errc <- nil
		for f := range n.reqs {
			f()
		}
	}()
	if err := <-errc; err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { close(n.reqs) })
	return n
}

// do runs f inside the namespace.
func (n *netns) do(f func()) {
	done := make(chan struct{})
	n.reqs <- func() { defer close(done); f() }
	<-done
}

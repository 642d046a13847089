package p2p

import (
	"testing"
	"time"

	"github.com/share-p2p/share/p2p/mocknet"
)

func TestTwoHostsEcho(t *testing.T) {
	for _, tc := range []struct {
		name string
		mem  bool
	}{{"tcp", false}, {"mem", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			if tc.mem {
				cfg.Transport = mocknet.New()
			}
			a := newTestHost(t, cfg)
			b := newTestHost(t, cfg)
			setEcho(a)
			setEcho(b)
			connect(t, a, b)
			for _, size := range []int{0, 1, 1000, 5 << 20} {
				echoRoundTrip(t, a, b.ID(), size)
				echoRoundTrip(t, b, a.ID(), size)
			}
			if got := a.Peers(); len(got) != 1 || got[0] != b.ID() {
				t.Fatalf("a.Peers() = %v", got)
			}
			rtt, err := a.Ping(testCtx(t), b.ID())
			if err != nil || rtt <= 0 {
				t.Fatalf("ping: %v %v", rtt, err)
			}
			// identify ran both ways
			c := a.Conn(b.ID())
			select {
			case <-c.Identified():
			case <-time.After(10 * time.Second):
				t.Fatal("identify did not finish")
			}
			if !a.Peerstore().SupportsProtocol(b.ID(), echoProto) {
				t.Fatalf("identify: protocols of b = %v", a.Peerstore().Protocols(b.ID()))
			}
			if av := a.Peerstore().AgentVersion(b.ID()); av != "share/0.1" {
				t.Fatalf("agent = %q", av)
			}
		})
	}
}

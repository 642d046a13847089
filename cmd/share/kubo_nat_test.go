package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kuboLabNet is the NAT lab's internet for tests with kubo: go-libp2p
// counts the default documentation range (198.51.100.0/24) as unroutable
// and neither offers nor dials such addresses in a hole punch, so kubo
// would never punch there. Like go-libp2p's own hole punching tests, we
// take a range it counts as public; the lab has no route out, so these
// addresses exist only inside its namespaces.
const kuboLabNet = "1.2.0"

// kuboNATLab is a NAT lab on kuboLabNet with a share relay on p1 (network
// ipfs, Relay.Service on with the default limits, so that a circuit only
// coordinates: data streams, ours and kubo's, wait for the punch), a plain
// share node on p2, and sites 1 to 4 behind endpoint-independent NATs.
type kuboNATLab struct {
	*lab
	bin          string
	relay, other string // the addresses of p1 and p2, with /p2p/ID
}

func newKuboNATLab(t *testing.T) *kuboNATLab {
	t.Helper()
	bin := kuboBinary(t)
	l := &kuboNATLab{lab: newNATLabOn(t, kuboLabNet, "2", "4"), bin: bin}
	l.relay = l.publicNode(t, "p1", "Relay.Service", "on")
	l.other = l.publicNode(t, "p2")
	return l
}

// publicNode starts a share daemon on public host (network ipfs, with
// config keys kv) and returns its address.
func (l *kuboNATLab) publicNode(t *testing.T, host string, kv ...string) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), host)
	configure(t, repo, append([]string{"Network", "ipfs", "Discovery.MDNS", "false", "Addresses.Gateway", "",
		"Addresses.Listen", `["/ip4/0.0.0.0/tcp/4001"]`}, kv...)...)
	addr := "/ip4/" + strings.TrimSpace(l.run(t, "ip", host)) + "/tcp/4001/p2p/" + l.id(t, host, repo).ID
	l.startDaemon(t, host, repo)
	return addr
}

// share starts a share daemon on host (network ipfs) that knows only the
// relay, reserves on it, and waits for the reservation.
func (l *kuboNATLab) shareNode(t *testing.T, host string) (repo, id string) {
	t.Helper()
	repo = filepath.Join(t.TempDir(), host)
	configure(t, repo, "Network", "ipfs", "Discovery.MDNS", "false", "Addresses.Gateway", "127.0.0.1:8080",
		"Addresses.Listen", `["/ip4/0.0.0.0/tcp/4001"]`, "AutoNAT.Confirmations", "1",
		"Bootstrap", `["`+l.relay+`"]`, "Relay.Client", "on", "Relay.StaticRelays", `["`+l.relay+`"]`)
	id = l.id(t, host, repo).ID
	l.startDaemon(t, host, repo)
	waitLab(t, host+"'s reservation on p1", func() bool {
		out, _ := l.share(host, repo, "id", "--json").Output()
		return bytes.Contains(out, []byte("/p2p-circuit"))
	})
	return repo, id
}

// kuboNode starts kubo on host, forced private (its AutoNAT would need
// peers we do not have), with the relay as its bootstrap peer and static
// relay and hole punching on, and waits until kubo serves DCUtR: go-libp2p
// registers the protocol only once it has a public address to offer, an
// address a peer observed on a connection from its listen port. Kubo may
// dial the relay before it listens (then from another port), so it also
// connects to p2 once it is up, as it would to any peer on the internet.
func (l *kuboNATLab) kuboNode(t *testing.T, host string) *labKubo {
	t.Helper()
	k := newLabKubo(t, l.lab, l.bin, host, false, l.relay)
	for key, v := range map[string]string{
		"Internal.Libp2pForceReachability": `"private"`,
		"Swarm.RelayClient.Enabled":        "true",
		"Swarm.RelayClient.StaticRelays":   `["` + l.relay + `"]`,
		"Swarm.EnableHolePunching":         "true",
	} {
		k.ok(t, l.bin, "config", "--json", key, v)
	}
	k.start(t, l.bin)
	k.ok(t, l.bin, "swarm", "connect", l.other)
	waitUntil(t, 30*time.Second, "kubo on "+host+" serves /libp2p/dcutr", func() (bool, string) {
		out, _ := k.cmd(l.bin, "id").CombinedOutput()
		return strings.Contains(string(out), `"/libp2p/dcutr"`), string(out)
	})
	return k
}

// punched reports whether share's daemon on host counts a successful
// hole punch in role (its /metrics, on the host's loopback: bash's
// /dev/tcp spares the lab a dependency on curl).
func (l *kuboNATLab) punched(t *testing.T, host, role string) bool {
	t.Helper()
	get := `exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3`
	cmd := exec.Command(l.script, "exec", host, "bash", "-c", get)
	cmd.Env = l.env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("metrics of %s: %v", host, err)
	}
	return bytes.Contains(out, []byte(`share_holepunch_total{role="`+role+`",outcome="success"} 1`))
}

// kuboDirect reports whether kubo has a direct (not relayed) connection
// to peer id, and what `ipfs swarm peers` says.
func (k *labKubo) direct(bin, id string) (bool, string) {
	out, _ := k.cmd(bin, "swarm", "peers").CombinedOutput()
	for _, line := range strings.Fields(string(out)) {
		if strings.HasSuffix(line, "/p2p/"+id) && !strings.Contains(line, "/p2p-circuit") {
			return true, string(out)
		}
	}
	return false, string(out)
}

// TestNATKuboHolePunch: DCUtR with kubo in both roles, on network ipfs,
// through a share relay on p1 whose default limits leave the data to the
// punched connection. (a) kubo behind site 1's NAT, reserved on the
// relay; share behind site 2's reaches it through the circuit, kubo
// initiates the punch and share responds, and share gets kubo's file over
// the direct connection. (b) share behind site 3's NAT, reserved on the
// relay; kubo behind site 4's connects through the circuit, share
// initiates and kubo responds, and kubo cats share's file over the direct
// connection.
func TestNATKuboHolePunch(t *testing.T) {
	l := newKuboNATLab(t)

	t.Run("KuboInitiates", func(t *testing.T) {
		k := l.kuboNode(t, "s1h1")
		waitUntil(t, 30*time.Second, "kubo's reservation on p1", func() (bool, string) {
			out, _ := k.cmd(l.bin, "id", "-f", "<addrs>").CombinedOutput()
			return strings.Contains(string(out), "/p2p-circuit"), string(out)
		})
		repo, id := l.shareNode(t, "s2h1")
		data := randBytes(t, 4<<20)
		c := strings.TrimSpace(k.ok(t, l.bin, "add", "-Q", writeTemp(t, data)))
		start := time.Now()
		if out, err := l.share("s2h1", repo, "connect", l.relay+"/p2p-circuit/p2p/"+k.id).CombinedOutput(); err != nil {
			t.Fatalf("connect to kubo through the relay: %v\n%s", err, out)
		}
		waitLab(t, "a direct connection from s2h1 to kubo", func() bool {
			a := peerAddrOn(t, l.lab, "s2h1", repo, k.id)
			return a != "" && !strings.Contains(a, "/p2p-circuit")
		})
		t.Logf("direct at %s after %v (from the connect)", peerAddrOn(t, l.lab, "s2h1", repo, k.id), time.Since(start).Round(time.Millisecond))
		dst := filepath.Join(t.TempDir(), "out.bin")
		if out, err := l.share("s2h1", repo, "get", c, "-o", dst, "--timeout", "20s").CombinedOutput(); err != nil {
			t.Fatalf("get of kubo's %s: %v\n%s", c, err, out)
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get: %d bytes (%v), want kubo's %d identical", len(got), err, len(data))
		}
		if !l.punched(t, "s2h1", "receiver") {
			t.Error("share on s2h1 counts no successful hole punch as the receiver")
		}
		if ok, peers := k.direct(l.bin, id); !ok {
			t.Fatalf("kubo has no direct connection to share after the get:\n%s", peers)
		}
	})

	t.Run("ShareInitiates", func(t *testing.T) {
		repo, id := l.shareNode(t, "s3h1")
		k := l.kuboNode(t, "s4h1")
		data := randBytes(t, 4<<20)
		src := writeTemp(t, data)
		out, err := l.share("s3h1", repo, "add", "-Q", "--cid-version", "0", src).Output()
		if err != nil {
			t.Fatalf("add: %v", err)
		}
		c := strings.TrimSpace(string(out))
		// Kubo's Bitswap broadcasts a want only to peers on a private
		// network or that sent it blocks before (its broadcast control);
		// a new peer at a public address it finds through the DHT, where
		// share's add announced the file (on p1).
		waitUntil(t, 30*time.Second, "kubo finds share's provider record", func() (bool, string) {
			out, _ := k.cmd(l.bin, "routing", "findprovs", "-n", "1", c).CombinedOutput()
			return strings.Contains(string(out), id), string(out)
		})
		start := time.Now()
		if out, err := k.cmd(l.bin, "swarm", "connect", l.relay+"/p2p-circuit/p2p/"+id).CombinedOutput(); err != nil {
			t.Fatalf("kubo swarm connect through the relay: %v: %s", err, out)
		}
		waitUntil(t, 30*time.Second, "kubo's direct connection to share", func() (bool, string) { return k.direct(l.bin, id) })
		t.Logf("direct after %v (from the connect)", time.Since(start).Round(time.Millisecond))
		cat := k.cmd(l.bin, "cat", "--timeout", "20s", c)
		var stderr bytes.Buffer
		cat.Stderr = &stderr
		got, err := cat.Output()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ipfs cat %s: %d bytes (want %d), %v: %s", c, len(got), len(data), err, stderr.Bytes())
		}
		if a := peerAddrOn(t, l.lab, "s3h1", repo, k.id); a == "" || strings.Contains(a, "/p2p-circuit") {
			t.Fatalf("after the cat, share's connection to kubo is at %q, want direct", a)
		}
		if !l.punched(t, "s3h1", "initiator") {
			t.Error("share on s3h1 counts no successful hole punch as the initiator")
		}
	})
}

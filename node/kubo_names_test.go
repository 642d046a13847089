package node

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/internal/kubotest"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/p2p/peer"
)

// TestKuboNames: on network ipfs, kubo resolves a name share publishes and
// share resolves (and fetches through) a name kubo publishes, each through
// the other's DHT (kubo's LAN DHT admits loopback peers).
func TestKuboNames(t *testing.T) {
	k := kubotest.Start(t)
	n := startNode(t, NetworkOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, nil, map[string]string{"Network": `"ipfs"`})
	k.Run("swarm", "connect", n.net.Host.Addrs()[0].String()+"/p2p/"+n.net.Host.ID().String())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitFor(t, 20*time.Second, func() bool { return n.net.LAN.RoutingTableSize() > 0 }, func() string { return "kubo never entered share's LAN DHT table" })

	c, _ := addRandom(t, n, 3000, 5)
	rec, err := n.Publish(ctx, dag.PathOf(c), PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(k.Run("name", "resolve", "/ipns/"+rec.Name))); got != "/ipfs/"+c.String() {
		t.Errorf("kubo resolved share's name to %q, want /ipfs/%s", got, c)
	}

	want := []byte("published by kubo\n")
	kc, err := kuboAdd(k, want)
	if err != nil {
		t.Fatal(err)
	}
	out := k.Run("name", "publish", "--ipns-base", "base36", "/ipfs/"+kc)
	kid, err := peer.Decode(k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), ipns.Name(kid)) {
		t.Fatalf("kubo published %q, not under its name %s", out, ipns.Name(kid))
	}
	got, err := n.ResolveName(ctx, ipns.Name(kid))
	if err != nil {
		t.Fatal(err)
	}
	if got.Value != "/ipfs/"+kc {
		t.Errorf("share resolved kubo's name to %q, want /ipfs/%s", got.Value, kc)
	}
	p, _ := dag.ParsePath("/ipns/" + ipns.Name(kid))
	rc, err := n.Resolve(ctx, p, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := n.Cat(ctx, rc, &buf, FetchOptions{}); err != nil || !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("cat /ipns/<kubo's name> = %q, %v", buf.Bytes(), err)
	}
}

func kuboAdd(k *kubotest.Kubo, data []byte) (string, error) {
	out, err := k.Try(data, "add", "-Q", "--cid-version=1")
	return strings.TrimSpace(string(out)), err
}

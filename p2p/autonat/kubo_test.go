package autonat

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/internal/kubotest"
	"github.com/share-p2p/share/p2p"
)

// TestKuboServer: kubo (SHARE_KUBO) serves AutoNAT v2 and our client
// speaks it: kubo reads our request and answers that it will not dial a
// loopback address (the only kind a test may have it dial), which our
// client reads as a refusal.
func TestKuboServer(t *testing.T) {
	k := kubotest.Start(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	h, err := p2p.NewHost(context.Background(), p2p.Config{Key: key, Network: "ipfs",
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := NewClient(h, ClientConfig{AllowPrivate: true})
	id, err := h.ConnectAddr(ctxT(t), ma.StringCast(k.Addr))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := Protocols("ipfs")
	if !h.Peerstore().SupportsProtocol(id, req) {
		t.Fatalf("kubo does not list %s: %v", req, h.Peerstore().Protocols(id))
	}
	ok, err := c.Check(ctxT(t), id, h.ListenAddrs()[0])
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("Check of a loopback address at kubo = %v, %v; want ErrRefused", ok, err)
	}
}

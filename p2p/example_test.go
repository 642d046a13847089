package p2p_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/share-p2p/share/p2p"
	"github.com/share-p2p/share/p2p/mocknet"
)

// Two hosts on the in-memory network: one serves a protocol, the other
// connects and opens a stream to it.
func Example() {
	ctx := context.Background()
	mem := mocknet.New()
	newHost := func() *p2p.Host {
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		h, err := p2p.NewHost(ctx, p2p.Config{
			Key:         key,
			Transport:   mem, // p2p.TCP{} (the default) in production
			ListenAddrs: []ma.Multiaddr{ma.StringCast("/memory/0")},
		})
		if err != nil {
			panic(err)
		}
		return h
	}
	server, client := newHost(), newHost()
	defer server.Close()
	defer client.Close()

	hello := server.Protocol("hello") // "/share/hello/1.0.0"
	server.SetHandler(hello, func(s *p2p.Stream) {
		defer s.Close()
		s.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(s, "hello, client: %v", s.Conn().RemotePeer() == client.ID())
	})

	if err := client.Connect(ctx, server.AddrInfo()); err != nil {
		panic(err)
	}
	s, err := client.NewStream(ctx, server.ID(), hello)
	if err != nil {
		panic(err)
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	s.CloseWrite()
	b, _ := io.ReadAll(s)
	fmt.Println(string(b))
	// Output: hello, client: true
}

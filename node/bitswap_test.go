package node

import (
	"testing"
)

// Two share nodes on network ipfs, both speaking Bitswap too, fetch from
// each other over share's protocol, never Bitswap.
func TestShareToShareOnIPFSUsesShareProtocol(t *testing.T) {
	ipfs := map[string]string{"Network": `"ipfs"`}
	opts := NetworkOptions{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}
	prov := startNode(t, opts, nil, ipfs)
	getter := startNode(t, opts, nil, ipfs)
	c, data := addRandom(t, prov, 6<<20, 31)
	connect(t, getter, prov)
	got, from := catFrom(t, getter, c.String())
	if string(got) != string(data) {
		t.Fatalf("cat: %d bytes, not the %d added", len(got), len(data))
	}
	if len(from) != 1 || from[0].Protocol != "/ipfs/blocks/1.0.0" {
		t.Fatalf("fetched from %+v, want everything over /ipfs/blocks/1.0.0", from)
	}
	if prov.net.Bitswap == nil {
		t.Fatal("the provider has no Bitswap server on network ipfs")
	}
}

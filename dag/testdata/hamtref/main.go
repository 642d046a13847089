// Command hamtref prints, as TSV, the root CIDs that boxo's UnixFS
// directory builder (the one kubo's `ipfs add` uses, with its default
// sharding settings: HAMT above 256 KiB of names plus CIDs, fanout 256)
// computes for the directories of share's dag/hamt_test.go. Its output is
// ../hamt-cids.tsv:
//
//	cd dag/testdata/hamtref && go run . > ../hamt-cids.tsv
//
// It is a module of its own so that boxo never enters share's build.
package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/ipfs/boxo/blockservice"
	blockstore "github.com/ipfs/boxo/blockstore"
	offline "github.com/ipfs/boxo/exchange/offline"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

var (
	ctx     = context.Background()
	leafPfx = cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.BLAKE3, MhLength: 32}
	nodePfx = cid.Prefix{Version: 1, Codec: cid.DagProtobuf, MhType: mh.BLAKE3, MhLength: 32}
)

type ent struct{ name, content string }

// flat is n one-chunk files "file-%06d.txt" holding "%d\n", the first
// one's name lengthened by pad x's (to land on the threshold exactly).
func flat(n, pad int) []ent {
	es := make([]ent, n)
	for i := range es {
		es[i] = ent{fmt.Sprintf("file-%06d.txt", i), fmt.Sprintf("%d\n", i)}
	}
	es[0].name += strings.Repeat("x", pad)
	return es
}

func dir(dserv ipld.DAGService, es []ent, subs map[string]ipld.Node) ipld.Node {
	d, err := uio.NewDirectory(dserv, uio.WithCidBuilder(nodePfx))
	check(err)
	for _, e := range es {
		leaf, err := mdag.NewRawNodeWPrefix([]byte(e.content), leafPfx)
		check(err)
		check(dserv.Add(ctx, leaf))
		check(d.AddChild(ctx, e.name, leaf))
	}
	for name, n := range subs {
		check(d.AddChild(ctx, name, n))
	}
	n, err := d.GetNode()
	check(err)
	check(dserv.Add(ctx, n))
	return n
}

func kind(n ipld.Node) string {
	fs, err := ft.FSNodeFromBytes(n.(*mdag.ProtoNode).Data())
	check(err)
	return fs.Type().String()
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}

func main() {
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	dserv := mdag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
	big := dir(dserv, flat(6000, 0), nil)
	cases := []struct {
		name string
		n    ipld.Node
	}{
		{"flat-5140", dir(dserv, flat(5140, 0), nil)},
		{"edge-262144", dir(dserv, flat(5140, 4), nil)},
		{"edge-262145", dir(dserv, flat(5140, 5), nil)},
		{"hamt-20000", dir(dserv, flat(20000, 0), nil)},
		{"nested/big", big},
		{"nested", dir(dserv, flat(3, 0), map[string]ipld.Node{"big": big})},
	}
	fmt.Println("case\ttype\tcid")
	for _, c := range cases {
		fmt.Printf("%s\t%s\t%s\n", c.name, kind(c.n), c.n.Cid())
	}
}

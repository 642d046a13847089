package dag

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
)

func TestParsePath(t *testing.T) {
	const c = "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"
	const v0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
	for _, tc := range []struct {
		in   string
		root string
		segs []string
		kind errs.Kind // the error's, Other when it parses
		msg  string    // in the error's text
	}{
		{in: c, root: c},
		{in: c + "/", root: c},
		{in: c + "/a/b", root: c, segs: []string{"a", "b"}},
		{in: c + "/a//b/", root: c, segs: []string{"a", "b"}},
		{in: "/ipfs/" + c, root: c},
		{in: "/ipfs/" + c + "/", root: c},
		{in: "/ipfs/" + c + "/sub/big.bin", root: c, segs: []string{"sub", "big.bin"}},
		{in: "ipfs://" + c + "/a b/ü", root: c, segs: []string{"a b", "ü"}},
		{in: v0 + "/x", root: v0, segs: []string{"x"}},
		{in: c + "/..a/b.", root: c, segs: []string{"..a", "b."}},
		{in: "notacid", kind: errs.Invalid, msg: `invalid CID "notacid"`},
		{in: "notacid/a", kind: errs.Invalid, msg: `invalid path "notacid/a": invalid CID "notacid"`},
		{in: "/ipfs/nope/a", kind: errs.Invalid, msg: `invalid path "/ipfs/nope/a": invalid CID "nope"`},
		{in: "/ipfs/", kind: errs.Invalid, msg: `invalid path "/ipfs/"`},
		{in: "", kind: errs.Invalid, msg: `invalid CID ""`},
		{in: "/" + c, kind: errs.Invalid, msg: "want CID, CID/PATH or /ipfs/CID/PATH"},
		{in: "/ipfs" + c, kind: errs.Invalid, msg: "want CID, CID/PATH or /ipfs/CID/PATH"},
		{in: c + "/a/../b", kind: errs.Invalid, msg: "no . or .. segments"},
		{in: c + "/./b", kind: errs.Invalid, msg: "no . or .. segments"},
		{in: "/ipns/example.com/a", kind: errs.Unsupported, msg: `"/ipns/example.com/a": DNSLink names are not supported`},
		{in: "ipns://k51qzi5uqu5d", kind: errs.Invalid, msg: "invalid IPNS name"},
		{in: "/ipns/", kind: errs.Invalid, msg: "invalid IPNS name"},
	} {
		p, err := ParsePath(tc.in)
		if tc.kind != errs.Other {
			if errs.KindOf(err) != tc.kind || !strings.Contains(errText(err), tc.msg) {
				t.Errorf("ParsePath(%q): %v (%v), want a %v error with %q", tc.in, err, errs.KindOf(err), tc.kind, tc.msg)
			}
			continue
		}
		if err != nil || p.Root.String() != tc.root || !slices.Equal(p.Segments, tc.segs) {
			t.Errorf("ParsePath(%q) = %v %q, %v; want %s %q", tc.in, p.Root, p.Segments, err, tc.root, tc.segs)
			continue
		}
		// String is a form ParsePath reads back to the same path.
		if q, err := ParsePath(p.String()); err != nil || q.String() != p.String() || !slices.Equal(q.Segments, p.Segments) {
			t.Errorf("ParsePath(%q).String() = %q, which reads back as %v, %v", tc.in, p.String(), q, err)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPathBase(t *testing.T) {
	c := Sum(Raw, []byte("x"))
	if b := PathOf(c).Base(); b != c.String() {
		t.Errorf("Base of a bare CID: %q", b)
	}
	if b := (Path{Root: c, Segments: []string{"sub", "big.bin"}}).Base(); b != "big.bin" {
		t.Errorf("Base: %q", b)
	}
}

// countingGetter counts the blocks read through it.
type countingGetter struct {
	share.Getter
	gets atomic.Int32
}

func (g *countingGetter) Get(ctx context.Context, c cid.Cid) (share.Block, error) {
	g.gets.Add(1)
	return g.Getter.Get(ctx, c)
}

// pathTree stores root/{hello.txt, sub/{a.txt}, shard/{20000 files}} and
// returns the root with the CIDs of hello.txt, sub/a.txt and one entry of
// the sharded directory.
func pathTree(t *testing.T, s *MemStore) (root, hello, a cid.Cid, shardName string, shardEntry cid.Cid) {
	t.Helper()
	put := func(data string) PBLink {
		c := Sum(Raw, []byte(data))
		s.Put(context.Background(), c, []byte(data))
		return PBLink{Hash: c, Tsize: uint64(len(data))}
	}
	helloL, aL := put("hello\n"), put("a\n")
	helloL.Name, aL.Name = "hello.txt", "a.txt"
	sub := buildDir(t, s, []PBLink{aL})
	flat := flatLinks(t, s, 20000, 0)
	shard := buildDir(t, s, flat)
	if nodeType(t, s, shard.c) != TypeHAMTShard {
		t.Fatal("the large directory is not sharded")
	}
	top := buildDir(t, s, []PBLink{
		helloL,
		{Hash: shard.c, Name: "shard", Tsize: shard.tsize},
		{Hash: sub.c, Name: "sub", Tsize: sub.tsize},
	})
	return top.c, helloL.Hash, aL.Hash, flat[12345].Name, flat[12345].Hash
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	root, hello, a, shardName, shardEntry := pathTree(t, s)
	for _, tc := range []struct {
		segs     []string
		want     cid.Cid
		maxReads int32
	}{
		{nil, root, 0},
		{[]string{"hello.txt"}, hello, 1},
		{[]string{"sub", "a.txt"}, a, 2},
		// Only the shards on the name's path are read.
		{[]string{"shard", shardName}, shardEntry, 4},
	} {
		g := &countingGetter{Getter: s}
		p := Path{Root: root, Segments: tc.segs}
		got, err := Resolve(ctx, g, p)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%s) = %v, %v; want %v", p, got, err, tc.want)
		}
		if n := g.gets.Load(); n > tc.maxReads {
			t.Errorf("Resolve(%s) read %d blocks, want at most %d", p, n, tc.maxReads)
		}
	}
}

func TestResolveMissing(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	root, _, _, _, _ := pathTree(t, s)
	for _, tc := range []struct {
		segs []string
		msg  string
	}{
		{[]string{"nope"}, `/nope: no link named "nope" under ` + root.String()},
		{[]string{"sub", "b"}, `/sub/b: no link named "b" under ` + root.String() + "/sub"},
		{[]string{"sub", "b", "c"}, `/sub/b/c: no link named "b" under ` + root.String() + "/sub"},
		{[]string{"hello.txt", "more"}, `no link named "more" under ` + root.String() + "/hello.txt"},
		{[]string{"shard", "file-999999.txt"}, `no link named "file-999999.txt" under ` + root.String() + "/shard"},
	} {
		p := Path{Root: root, Segments: tc.segs}
		_, err := Resolve(ctx, s, p)
		var nl *NoLinkError
		if !errors.As(err, &nl) || !errors.Is(err, ErrNoLink) || errs.KindOf(err) != errs.NotFound || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Resolve(%s): %v (%v), want a not-found NoLinkError with %q", p, err, errs.KindOf(err), tc.msg)
		}
	}
	// A block that is not there is the getter's error, naming the path.
	s.Delete(root)
	p := Path{Root: root, Segments: []string{"hello.txt"}}
	if _, err := Resolve(ctx, s, p); errs.KindOf(err) != errs.NotFound || errors.Is(err, ErrNoLink) || !strings.Contains(err.Error(), p.String()) {
		t.Errorf("Resolve with the root missing: %v", err)
	}
}

func TestParseIPNSPath(t *testing.T) {
	const name = "k51qzi5uqu5dmc4pblt5bs1pvjb6f9nzz247f1tqjc1cdaxbasmp1xz06szbaz"
	for _, tc := range []struct {
		in   string
		segs []string
	}{
		{"/ipns/" + name, nil},
		{"/ipns/" + name + "/", nil},
		{"/ipns/" + name + "/a/b", []string{"a", "b"}},
		{"ipns://" + name + "/a", []string{"a"}},
		{"/ipns/12D3KooWBgCdFBwG2u3hLRSXdrHtYpiAKGANwqyiTnuJWBXAZVfR/x", []string{"x"}},
	} {
		p, err := ParsePath(tc.in)
		if err != nil || p.Name == "" || p.Root.Defined() || !slices.Equal(p.Segments, tc.segs) {
			t.Errorf("ParsePath(%q) = %+v, %v", tc.in, p, err)
			continue
		}
		if q, err := ParsePath(p.String()); err != nil || q.String() != p.String() {
			t.Errorf("ParsePath(%q).String() = %q reads back as %v, %v", tc.in, p.String(), q, err)
		}
		if _, err := Resolve(context.Background(), NewMemStore(), p); !errors.Is(err, ErrUnresolvedName) {
			t.Errorf("Resolve(%q): %v, want ErrUnresolvedName", tc.in, err)
		}
	}
	if p, _ := ParsePath("/ipns/" + name + "/a/b"); p.Base() != "b" {
		t.Errorf("Base = %q", p.Base())
	}
	if p, _ := ParsePath("/ipns/" + name); p.Base() != name {
		t.Errorf("Base = %q", p.Base())
	}
}

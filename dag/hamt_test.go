package dag

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
)

// flatLinks stores n one-chunk files "file-%06d.txt" holding "%d\n" in s
// (the first name lengthened by pad x's) and returns their links sorted by
// name: the directories of testdata/hamtref.
func flatLinks(t testing.TB, s share.Putter, n, pad int) []PBLink {
	t.Helper()
	links := make([]PBLink, n)
	for i := range links {
		data := []byte(fmt.Sprintf("%d\n", i))
		c := Sum(Raw, data)
		if err := s.Put(context.Background(), c, data); err != nil {
			t.Fatal(err)
		}
		links[i] = PBLink{Hash: c, Name: fmt.Sprintf("file-%06d.txt", i), Tsize: uint64(len(data))}
	}
	links[0].Name += strings.Repeat("x", pad)
	slices.SortFunc(links, func(a, b PBLink) int { return strings.Compare(a.Name, b.Name) })
	return links
}

func buildDir(t testing.TB, s share.Putter, links []PBLink) entry {
	t.Helper()
	e, err := newImporter(s, ImportOptions{}).directory(context.Background(), links, fileMeta{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// nodeType decodes block c of s and returns its UnixFS type.
func nodeType(t testing.TB, s share.Getter, c cid.Cid) Type {
	t.Helper()
	b, err := fetch(context.Background(), s, c)
	if err != nil {
		t.Fatal(err)
	}
	_, fs, err := decodeUnixFSNode(c, b.Data)
	if err != nil {
		t.Fatal(err)
	}
	return fs.Type
}

// TestHAMTReferenceCIDs checks our directories, sharded or not around the
// threshold, against the CIDs boxo (kubo's importer) computes for the same
// entries: testdata/hamt-cids.tsv, made by testdata/hamtref.
func TestHAMTReferenceCIDs(t *testing.T) {
	f, err := os.Open("testdata/hamt-cids.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type row struct{ typ, cid string }
	want := map[string]row{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Split(sc.Text(), "\t")
		if len(fs) != 3 {
			t.Fatalf("bad row %q", sc.Text())
		}
		want[fs[0]] = row{fs[1], fs[2]}
	}
	s := NewMemStore()
	big := buildDir(t, s, flatLinks(t, s, 6000, 0))
	nested := append(flatLinks(t, s, 3, 0), PBLink{Hash: big.c, Name: "big", Tsize: big.tsize})
	slices.SortFunc(nested, func(a, b PBLink) int { return strings.Compare(a.Name, b.Name) })
	got := map[string]cid.Cid{
		"flat-5140":   buildDir(t, s, flatLinks(t, s, 5140, 0)).c,
		"edge-262144": buildDir(t, s, flatLinks(t, s, 5140, 4)).c,
		"edge-262145": buildDir(t, s, flatLinks(t, s, 5140, 5)).c,
		"hamt-20000":  buildDir(t, s, flatLinks(t, s, 20000, 0)).c,
		"nested/big":  big.c,
		"nested":      buildDir(t, s, nested).c,
	}
	if len(want) != len(got) {
		t.Fatalf("%d reference rows, %d cases", len(want), len(got))
	}
	for name, c := range got {
		w, ok := want[name]
		if !ok {
			t.Fatalf("no reference row for %s", name)
		}
		if c.String() != w.cid {
			t.Errorf("%s: CID %s, reference %s", name, c, w.cid)
		}
		if typ := nodeType(t, s, c); typ != map[string]Type{"Directory": TypeDirectory, "HAMTShard": TypeHAMTShard}[w.typ] {
			t.Errorf("%s: root is a %s, reference a %s", name, typ, w.typ)
		}
	}
}

func TestHAMTReadBack(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	links := flatLinks(t, s, 20000, 0)
	root := buildDir(t, s, links)
	if nodeType(t, s, root.c) != TypeHAMTShard {
		t.Fatal("20000 entries not sharded")
	}
	var sum uint64
	for _, l := range links {
		sum += l.Tsize
	}
	info, err := Stat(ctx, s, root.c)
	if err != nil {
		t.Fatal(err)
	}
	if info.Type != TypeDirectory || info.CumulativeSize != root.tsize || root.tsize <= sum {
		t.Fatalf("stat: %+v, entry tsize %d, leaves %d", info, root.tsize, sum)
	}

	ents, err := ReadDir(ctx, s, root.c)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(links) {
		t.Fatalf("ReadDir: %d entries, want %d", len(ents), len(links))
	}
	for i, e := range ents {
		if e.Name != links[i].Name || e.Cid != links[i].Hash || e.Type != TypeFile || e.Size != links[i].Tsize {
			t.Fatalf("entry %d: %+v, want %+v", i, e, links[i])
		}
	}

	for i := 0; i < len(links); i += 97 {
		l, err := Lookup(ctx, s, root.c, links[i].Name)
		if err != nil || l.Hash != links[i].Hash || l.Name != links[i].Name {
			t.Fatalf("Lookup %s: %v %v", links[i].Name, l, err)
		}
	}
	for _, name := range []string{"file-020000.txt", "file-000001.tx", "00file-000001.txt", "nope"} {
		if _, err := Lookup(ctx, s, root.c, name); !errors.Is(err, ErrNoLink) {
			t.Fatalf("Lookup %q: %v, want ErrNoLink", name, err)
		}
	}

	// Walk reaches every leaf and every shard; no shard is large.
	nShards, nLeaves := 0, 0
	err = Walk(ctx, s, root.c, WalkOptions{VerifyLeaves: true}, func(c cid.Cid) error {
		if c.Type() == Raw {
			nLeaves++
			return nil
		}
		nShards++
		b, err := s.Get(ctx, c)
		if err != nil {
			return err
		}
		data := b.Data
		if len(data) > 32<<10 {
			t.Errorf("shard %s is %d bytes", c, len(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if nLeaves != len(links) || nShards < 1+256 {
		t.Fatalf("walk: %d leaves, %d shards", nLeaves, nShards)
	}

	out := filepath.Join(t.TempDir(), "out")
	if err := WriteTo(ctx, s, root.c, out, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != len(links) {
		t.Fatalf("WriteTo: %d files, want %d", len(des), len(links))
	}
	for _, i := range []int{0, 12345, 19999} {
		b, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("file-%06d.txt", i)))
		if err != nil || string(b) != fmt.Sprintf("%d\n", i) {
			t.Fatalf("file %d: %q %v", i, b, err)
		}
	}
}

// TestImportPathShards imports a directory tree from disk whose inner
// directory crosses the threshold: it is sharded, the small one around it
// is not, and both read back.
func TestImportPathShards(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "top")
	big := filepath.Join(dir, "big")
	if err := os.MkdirAll(big, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 6000 {
		if err := os.WriteFile(filepath.Join(big, fmt.Sprintf("file-%06d.txt", i)), []byte(fmt.Sprintf("%d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := NewMemStore()
	root, err := ImportPath(ctx, dir, s, ImportOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if nodeType(t, s, root) != TypeDirectory {
		t.Fatal("top directory sharded")
	}
	l, err := Lookup(ctx, s, root, "big")
	if err != nil {
		t.Fatal(err)
	}
	if nodeType(t, s, l.Hash) != TypeHAMTShard {
		t.Fatal("big directory not sharded")
	}
	f, err := Lookup(ctx, s, l.Hash, "file-004321.txt")
	if err != nil || f.Hash != Sum(Raw, []byte("4321\n")) {
		t.Fatalf("lookup in the shards: %v %v", f, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := WriteTo(ctx, s, root, out, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(filepath.Join(out, "big"))
	if err != nil || len(des) != 6000 {
		t.Fatalf("written: %d entries, %v", len(des), err)
	}
}

// shardBlock stores a HAMT shard node with these links and UnixFS fields.
func shardBlock(t testing.TB, s share.Putter, fs UnixFS, links ...PBLink) cid.Cid {
	t.Helper()
	fs.Type = TypeHAMTShard
	blk := (&PBNode{Links: links, Data: fs.Marshal()}).Marshal()
	c := Sum(DagPB, blk)
	if err := s.Put(context.Background(), c, blk); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestHAMTMalformed feeds readers shards a malicious peer could send: each
// is a clear error, never a panic, a hang or a wrong listing.
func TestHAMTMalformed(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	leaf := Sum(Raw, []byte("x"))
	if err := s.Put(ctx, leaf, []byte("x")); err != nil {
		t.Fatal(err)
	}
	ok := UnixFS{HashType: HashMurmur3, HasHashType: true, Fanout: 256, HasFanout: true}
	with := func(mod func(*UnixFS)) UnixFS { u := ok; mod(&u); return u }
	bits := func(slots ...int) []byte {
		b := make([]byte, 32)
		for _, s := range slots {
			b[31-s/8] |= 1 << (s % 8)
		}
		for len(b) > 0 && b[0] == 0 {
			b = b[1:]
		}
		return b
	}
	// a valid shard holding "x" in its right slot, to reuse below
	xs := slot(hamtHash("x"), 0, 8)
	good := shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(xs) }), PBLink{Hash: leaf, Name: fmt.Sprintf("%02Xx", xs), Tsize: 1})
	if ents, err := ReadDir(ctx, s, good); err != nil || len(ents) != 1 || ents[0].Name != "x" {
		t.Fatalf("valid shard: %v %v", ents, err)
	}
	dirBlk := (&PBNode{Data: (&UnixFS{Type: TypeDirectory}).Marshal()}).Marshal()
	plainDir := Sum(DagPB, dirBlk)
	if err := s.Put(ctx, plainDir, dirBlk); err != nil {
		t.Fatal(err)
	}
	// nine shards, each the only child of the one above: deeper than 64 bits
	deep := good
	for range 9 {
		deep = shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(0) }), PBLink{Hash: deep, Name: "00"})
	}
	twice := shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(1, 2) }),
		PBLink{Hash: leaf, Name: "01x"}, PBLink{Hash: good, Name: "02"})

	cases := []struct {
		name string
		root cid.Cid
		want error
	}{
		{"hash function", shardBlock(t, s, with(func(u *UnixFS) { u.HashType = 0x11; u.Data = bits(xs) }), PBLink{Hash: leaf, Name: fmt.Sprintf("%02Xx", xs)}), ErrUnsupported},
		{"no fanout", shardBlock(t, s, with(func(u *UnixFS) { u.HasFanout = false }), PBLink{Hash: leaf, Name: "00x"}), ErrInvalidNode},
		{"fanout not a power of two", shardBlock(t, s, with(func(u *UnixFS) { u.Fanout = 300; u.Data = bits(0) }), PBLink{Hash: leaf, Name: "000x"}), ErrInvalidNode},
		{"fanout too large", shardBlock(t, s, with(func(u *UnixFS) { u.Fanout = 1 << 20; u.Data = []byte{1} }), PBLink{Hash: leaf, Name: "00000x"}), ErrInvalidNode},
		{"bitfield too long", shardBlock(t, s, with(func(u *UnixFS) { u.Data = make([]byte, 33) }), PBLink{Hash: leaf, Name: "00x"}), ErrInvalidNode},
		{"fewer bits than links", shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(0) }), PBLink{Hash: leaf, Name: "00x"}, PBLink{Hash: leaf, Name: "01y"}), ErrInvalidNode},
		{"slot not set", shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(5) }), PBLink{Hash: leaf, Name: "04x"}), ErrInvalidNode},
		{"slots out of order", shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(1, 2) }), PBLink{Hash: leaf, Name: "02x"}, PBLink{Hash: leaf, Name: "01y"}), ErrInvalidNode},
		{"not hex", shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(0) }), PBLink{Hash: leaf, Name: "ZZx"}), ErrInvalidNode},
		{"short name", shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(0) }), PBLink{Hash: leaf, Name: "0"}), ErrInvalidNode},
		{"entry name with a slash", shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(0) }), PBLink{Hash: leaf, Name: "00../x"}), ErrInvalidNode},
		{"entry name ..", shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(0) }), PBLink{Hash: leaf, Name: "00.."}), ErrInvalidNode},
		{"raw child shard", shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(0) }), PBLink{Hash: leaf, Name: "00"}), ErrInvalidNode},
		{"directory among the shards", shardBlock(t, s, with(func(u *UnixFS) { u.Data = bits(0) }), PBLink{Hash: plainDir, Name: "00"}), ErrInvalidNode},
		{"deeper than the hash", deep, ErrInvalidNode},
		{"a name twice", twice, ErrInvalidNode},
	}
	for _, tc := range cases {
		_, err := ReadDir(ctx, s, tc.root)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: ReadDir: %v, want %v", tc.name, err, tc.want)
		}
		// Lookup follows one path only, so it need not see every fault,
		// but it must not panic and must not find the planted entry in a
		// shard whose header is bad.
		if l, err := Lookup(ctx, s, tc.root, "x"); err == nil && tc.name != "a name twice" && tc.name != "deeper than the hash" {
			t.Errorf("%s: Lookup found %v", tc.name, l)
		}
	}
}

func FuzzDecodeShard(f *testing.F) {
	s := NewMemStore()
	links := flatLinks(f, s, 6000, 0)
	root := buildDir(f, s, links)
	for _, c := range []cid.Cid{root.c} {
		data := getData(f, s, c)
		f.Add(data, 0)
		pn, _ := DecodePBNode(data)
		f.Add(pn.Links[0].Hash.Bytes(), 1) // not a node: must be an error
		f.Add(getData(f, s, pn.Links[0].Hash), 1)
	}
	f.Fuzz(func(t *testing.T, data []byte, depth int) {
		depth = max(0, depth%10)
		c := Sum(DagPB, data)
		pn, fs, err := decodeUnixFSNode(c, data)
		if err != nil || fs.Type != TypeHAMTShard {
			return
		}
		sn, err := decodeShard(c, pn, fs, depth)
		if err != nil {
			return
		}
		if len(sn.entries)+len(sn.subs) != len(pn.Links) || len(sn.slots) != len(pn.Links) {
			t.Fatalf("%d entries and %d shards from %d links", len(sn.entries), len(sn.subs), len(pn.Links))
		}
		for _, e := range sn.entries {
			if !validName(e.Name) {
				t.Fatalf("entry name %q accepted", e.Name)
			}
		}
	})
}

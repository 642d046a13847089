package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/pin"
)

// addFolder writes files to a fresh folder and adds it in chunks of 1 KiB.
func addFolder(t testing.TB, n *Node, files map[string][]byte) cid.Cid {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "folder")
	writeTree(t, dir, files)
	c, err := n.Add(context.Background(), dir, nil, AddOptions{Recursive: true, Chunker: "size-1024"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startFollow runs Follow until the test ends and returns its updates.
func startFollow(t testing.TB, n *Node, name, dir string, opts FollowOptions) <-chan FollowUpdate {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	updates := make(chan FollowUpdate, 16)
	opts.Updated = func(u FollowUpdate) { updates <- u }
	done := make(chan error, 1)
	go func() { done <- n.Follow(ctx, name, dir, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Follow: %v", err)
		}
	})
	return updates
}

func nextUpdate(t testing.TB, updates <-chan FollowUpdate, d time.Duration) FollowUpdate {
	t.Helper()
	select {
	case u := <-updates:
		if u.Err != "" {
			t.Fatalf("update failed: %s", u.Err)
		}
		return u
	case <-time.After(d):
		t.Fatalf("no update within %v", d)
	}
	return FollowUpdate{}
}

func sameFiles(t testing.TB, dir string, want map[string][]byte) {
	t.Helper()
	for p, b := range want {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", p, len(got), err, len(b))
		}
	}
}

// TestFollow: a follower that starts after the first publish finds the
// name in the DHT; the next version reaches it over pubsub, long before
// its DHT poll, and fetches only the blocks that changed. The previous
// version is unpinned.
func TestFollow(t *testing.T) {
	// On TCP: the DHT keeps only peers of dialable addresses.
	pub, fol := onlineNode(t), onlineNode(t)
	connect(t, fol, pub)
	v1 := map[string][]byte{"big": bytes.Repeat([]byte("0123456789abcdef"), 256), "small": []byte("one")}
	c1 := addFolder(t, pub, v1)
	ctx := context.Background()
	rec, err := pub.Publish(ctx, dag.PathOf(c1), PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	updates := startFollow(t, fol, rec.Name, dir, FollowOptions{})
	u := nextUpdate(t, updates, 10*time.Second)
	if u.Cid != c1.String() || u.Written != 2 {
		t.Fatalf("first update %+v, want %s with 2 files written", u, c1)
	}
	sameFiles(t, dir, v1)

	// Wait until the publisher knows the follower subscribes, so that
	// the announcement reaches it.
	waitFor(t, 10*time.Second, func() bool { return len(pub.net.PubSub.ListPeers(ipns.Topic(pub.Repo.Identity.ID))) > 0 },
		func() string { return "the publisher never heard of the follower's subscription" })
	v2 := map[string][]byte{"big": bytes.Clone(v1["big"]), "small": []byte("one")}
	v2["big"][1500] = 'X' // the second of four chunks
	c2 := addFolder(t, pub, v2)
	missing, missingBytes := missingBlocks(t, pub, fol, c2)
	start := time.Now()
	if _, err := pub.Publish(ctx, dag.PathOf(c2), PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	u = nextUpdate(t, updates, 10*time.Second)
	t.Logf("second version written %v after publish: %+v", time.Since(start), u)
	if u.Cid != c2.String() || u.Written != 1 || u.Unchanged != 1 {
		t.Fatalf("second update %+v, want %s with 1 file written, 1 unchanged", u, c2)
	}
	// The folder's root, big's root and its changed leaf are missing,
	// and fetched once each; the unchanged leaves are not fetched again.
	if missing != 3 || u.Fetched != uint64(missing) || u.FetchedBytes != missingBytes {
		t.Errorf("fetched %d blocks, %d bytes; %d blocks of %d bytes were missing", u.Fetched, u.FetchedBytes, missing, missingBytes)
	}
	sameFiles(t, dir, v2)
	if _, err := fol.Pins.Get(c1); err == nil {
		t.Error("the previous version is still pinned")
	}
	if p, err := fol.Pins.Get(c2); err != nil || p.Mode != pin.Recursive {
		t.Errorf("the new version's pin: %+v, %v", p, err)
	}
	if st := fol.Following(); len(st) != 1 || st[0].Cid != c2.String() || st[0].Sequence != 1 {
		t.Errorf("Following() = %+v", st)
	}
}

// missingBlocks counts the blocks of root's DAG that to lacks and from
// has, and their bytes.
func missingBlocks(t testing.TB, from, to *Node, root cid.Cid) (n int, bytes int64) {
	t.Helper()
	ctx := context.Background()
	err := dag.Walk(ctx, from.local(), root, dag.WalkOptions{}, func(c cid.Cid) error {
		if ok, err := to.local().Has(ctx, c); err != nil || ok {
			return err
		}
		b, err := from.local().Get(ctx, c)
		if err != nil {
			return err
		}
		n, bytes = n+1, bytes+int64(len(b.Data))
		b.Release()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, bytes
}

// TestFollowBadRecords: on a followed name's topic, bytes that are no
// record, a record of another key and a replayed older record are
// refused (the first two scored against their sender) and leave the
// folder as it is; a record that came first by the DHT (stored, no
// follower woken) is written when its announcement arrives.
func TestFollowBadRecords(t *testing.T) {
	pub, fol, bad := onlineNode(t), onlineNode(t), onlineNode(t)
	connect(t, fol, pub)
	connect(t, bad, fol)
	ctx := context.Background()
	id := pub.Repo.Identity.ID
	topic := ipns.Topic(id)
	publish := func(content string) (cid.Cid, NameRecord) {
		c := addFolder(t, pub, map[string][]byte{"f": []byte(content)})
		rec, err := pub.Publish(ctx, dag.PathOf(c), PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return c, rec
	}
	_, rec := publish("v0")
	old, err := pub.values.Get(ipns.RoutingKey(id))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	updates := startFollow(t, fol, rec.Name, dir, FollowOptions{})
	nextUpdate(t, updates, 10*time.Second)
	waitFor(t, 10*time.Second, func() bool {
		return len(pub.net.PubSub.ListPeers(topic)) > 0 && len(bad.net.PubSub.ListPeers(topic)) > 0
	}, func() string { return "the follower's subscription was not seen" })
	c1, _ := publish("v1")
	if u := nextUpdate(t, updates, 10*time.Second); u.Cid != c1.String() {
		t.Fatalf("update to %s, want %s", u.Cid, c1)
	}

	badTopic, _ := bad.net.PubSub.Join(topic)
	other, err := ipns.New(bad.Repo.Identity.Key, []byte("/ipfs/"+c1.String()), 99, time.Now().Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	before := fol.net.PubSub.Stats()
	for _, m := range [][]byte{[]byte("not a record"), other.Marshal(), old} {
		if err := badTopic.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, func() bool {
		s := fol.net.PubSub.Stats()
		return s.Invalid-before.Invalid == 2 && s.Ignored-before.Ignored == 1
	}, func() string {
		return fmt.Sprintf("follower's pubsub counts %+v, before %+v", fol.net.PubSub.Stats(), before)
	})
	select {
	case u := <-updates:
		t.Fatalf("an update after bad records: %+v", u)
	default:
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "v1" {
		t.Fatalf("the folder holds %q after bad records, want v1", b)
	}

	// The DHT brings the next record first; its announcement wakes the
	// follower though it is no news to the store.
	c2 := addFolder(t, pub, map[string][]byte{"f": []byte("v2")})
	r2, err := ipns.New(pub.Repo.Identity.Key, []byte("/ipfs/"+c2.String()), 2, time.Now().Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := fol.values.Put(ipns.RoutingKey(id), r2.Marshal()); err != nil {
		t.Fatal(err)
	}
	announceRecord(ctx, pub.net, id, r2.Marshal())
	if u := nextUpdate(t, updates, 10*time.Second); u.Cid != c2.String() {
		t.Fatalf("update to %s, want %s", u.Cid, c2)
	}
}

// TestFollowKeep: with Keep, an update pins the new version and leaves
// the previous one pinned.
func TestFollowKeep(t *testing.T) {
	pub, fol := onlineNode(t), onlineNode(t)
	connect(t, fol, pub)
	ctx := context.Background()
	c1 := addFolder(t, pub, map[string][]byte{"f": []byte("version one")})
	rec, err := pub.Publish(ctx, dag.PathOf(c1), PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	updates := startFollow(t, fol, rec.Name, dir, FollowOptions{Keep: true})
	if u := nextUpdate(t, updates, 10*time.Second); u.Cid != c1.String() {
		t.Fatalf("first update to %s, want %s", u.Cid, c1)
	}
	waitFor(t, 10*time.Second, func() bool { return len(pub.net.PubSub.ListPeers(ipns.Topic(pub.Repo.Identity.ID))) > 0 },
		func() string { return "the publisher never heard of the follower's subscription" })
	c2 := addFolder(t, pub, map[string][]byte{"f": []byte("version two")})
	if _, err := pub.Publish(ctx, dag.PathOf(c2), PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if u := nextUpdate(t, updates, 10*time.Second); u.Cid != c2.String() {
		t.Fatalf("second update to %s, want %s", u.Cid, c2)
	}
	sameFiles(t, dir, map[string][]byte{"f": []byte("version two")})
	for _, c := range []cid.Cid{c1, c2} {
		if p, err := fol.Pins.Get(c); err != nil || p.Mode != pin.Recursive {
			t.Errorf("pin of %s: %+v, %v; want it kept, recursive", c, p, err)
		}
	}
}

// TestPinFetchesOnlyMissing: pinning a new version of a folder whose
// previous version is here fetches exactly the blocks that are missing,
// once each: the blocks and bytes the publisher's exchange sent and the
// follower's received are those of the missing blocks. (The fetcher's
// read of the root for the DAG's size used to fetch the root again and
// again while the pin's session ran: 5 blocks for 3.)
func TestPinFetchesOnlyMissing(t *testing.T) {
	pub, fol := onlineNode(t), onlineNode(t)
	connect(t, fol, pub)
	ctx := context.Background()
	v1 := map[string][]byte{"big": bytes.Repeat([]byte("0123456789abcdef"), 256), "small": []byte("one")}
	if err := fol.PinAdd(ctx, addFolder(t, pub, v1), pin.Recursive, "v1", FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	v2 := map[string][]byte{"big": bytes.Clone(v1["big"]), "small": []byte("one")}
	v2["big"][1500] = 'X'
	c2 := addFolder(t, pub, v2)
	missing, missingBytes := missingBlocks(t, pub, fol, c2)
	sent, got := pub.net.Traffic.Total(time.Now()), fol.net.Traffic.Total(time.Now())
	if err := fol.PinAdd(ctx, c2, pin.Recursive, "v2", FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	delta := func() (sentBlocks, sentBytes, gotBlocks, gotBytes int64) {
		s, g := pub.net.Traffic.Total(time.Now()), fol.net.Traffic.Total(time.Now())
		return s.BlocksOut - sent.BlocksOut, s.BytesOut - sent.BytesOut, g.BlocksIn - got.BlocksIn, g.BytesIn - got.BytesIn
	}
	// The server counts a block once it is written: maybe after the
	// follower has it.
	waitFor(t, 10*time.Second, func() bool { sb, _, _, _ := delta(); return sb >= int64(missing) },
		func() string {
			sb, _, _, _ := delta()
			return fmt.Sprintf("the publisher sent %d blocks, want %d", sb, missing)
		})
	sb, sB, gb, gB := delta()
	if sb != int64(missing) || sB != missingBytes || gb != int64(missing) || gB != missingBytes {
		t.Errorf("sent %d blocks of %d bytes, received %d of %d; %d blocks of %d bytes were missing", sb, sB, gb, gB, missing, missingBytes)
	}
}

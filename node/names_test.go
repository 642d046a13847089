package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/gateway"
	"github.com/share-p2p/share/ipns"
	"github.com/share-p2p/share/repo"
)

// publishTree adds a directory of one file, a.txt, and publishes it under
// key.
func publishTree(t *testing.T, n *Node, key, content string) NameRecord {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "site")
	writeTree(t, dir, map[string][]byte{"a.txt": []byte(content)})
	c, err := n.Add(context.Background(), dir, nil, AddOptions{Recursive: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := n.Publish(context.Background(), dag.PathOf(c), PublishOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestNamesOverNetwork: a name published by one node resolves on another,
// through every surface of paths (Resolve, so get, cat, ls, pin add and
// export; the gateway), and follows a new version.
func TestNamesOverNetwork(t *testing.T) {
	// On TCP: the DHT keeps only peers of dialable addresses.
	nodes := []*Node{onlineNode(t), onlineNode(t), onlineNode(t), onlineNode(t)}
	for _, n := range nodes[1:] {
		connect(t, n, nodes[0])
	}
	pub, res := nodes[1], nodes[3]
	if _, err := repo.KeysOf(pub.Repo.Path).Gen("site"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gw := gateway.New(res, gateway.Options{Names: res})
	for i, content := range []string{"one", "two"} {
		rec := publishTree(t, pub, "site", content)
		if rec.Sequence != uint64(i) || rec.Peers == 0 {
			t.Fatalf("published %+v, want sequence %d taken by peers", rec, i)
		}
		p, err := dag.ParsePath("/ipns/" + rec.Name + "/a.txt")
		if err != nil {
			t.Fatal(err)
		}
		c, err := res.Resolve(ctx, p, FetchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := res.Cat(ctx, c, &out, FetchOptions{}); err != nil || out.String() != content {
			t.Fatalf("cat /ipns/NAME/a.txt = %q, %v; want %q", out.String(), err, content)
		}
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, httptest.NewRequest("GET", "/ipns/"+rec.Name+"/a.txt", nil))
		body, _ := io.ReadAll(w.Body)
		if w.Code != 200 || string(body) != content || w.Header().Get("Cache-Control") != "public, max-age=300" {
			t.Fatalf("gateway /ipns/NAME/a.txt: %d %q, Cache-Control %q", w.Code, body, w.Header().Get("Cache-Control"))
		}
	}
	// A name nobody published.
	k, err := repo.KeysOf(pub.Repo.Path).Gen("unused")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.ResolveName(ctx, ipns.Name(k.ID)); !errs.Is(errs.NotFound, err) {
		t.Errorf("resolve of an unpublished name: %v, want kind not found", err)
	}
	if _, err := res.ResolveName(ctx, "example.com"); !errs.Is(errs.Invalid, err) {
		t.Errorf("resolve of a DNSLink name: %v, want kind invalid", err)
	}
}

// TestPublishExpired: a record whose lifetime ends before it is stored is
// refused, here first, and resolves nowhere.
func TestPublishExpired(t *testing.T) {
	a, b := onlineNode(t), onlineNode(t)
	connect(t, b, a)
	c, _ := addRandom(t, a, 1000, 1)
	ctx := context.Background()
	if _, err := a.Publish(ctx, dag.PathOf(c), PublishOptions{Lifetime: time.Nanosecond}); !errors.Is(err, ipns.ErrExpired) {
		t.Fatalf("publish of an expiring record: %v, want ipns.ErrExpired", err)
	}
	if _, err := b.ResolveName(ctx, ipns.Name(a.Repo.Identity.ID)); !errs.Is(errs.NotFound, err) {
		t.Errorf("resolve of an expired record: %v, want kind not found", err)
	}
}

package pin

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/dag"
	"github.com/share-p2p/share/errs"
)

func TestPinSet(t *testing.T) {
	dbdir := filepath.Join(t.TempDir(), "db")
	bs, err := blockstore.Open(dbdir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(bs.Keyspace('p'))
	ctx := context.Background()
	a, b := dag.Sum(dag.Raw, []byte("a")), dag.Sum(dag.Raw, []byte("b"))
	if err := s.Add(ctx, a, Recursive, "zeta"); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, b, Direct, "alpha"); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(ctx, b, "sideways", ""); err == nil {
		t.Fatal("bad mode accepted")
	}
	pins, err := s.List(ctx)
	if err != nil || len(pins) != 2 || pins[0].Name != "alpha" || pins[0].Mode != Direct || !pins[1].Cid.Equals(a) {
		t.Fatalf("List = %+v, %v", pins, err)
	}
	if err := s.Remove(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, a); !errs.Is(errs.NotFound, err) {
		t.Fatalf("second Remove = %v, want errs.NotFound", err)
	}
	if _, err := s.Get(a); !errs.Is(errs.NotFound, err) {
		t.Fatalf("Get after Remove = %v", err)
	}
	// Pins survive a reopen (each write is synced).
	bs.Close()
	bs, err = blockstore.Open(dbdir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	pins, err = New(bs.Keyspace('p')).List(ctx)
	if err != nil || len(pins) != 1 || !pins[0].Cid.Equals(b) {
		t.Fatalf("after reopen: %+v, %v", pins, err)
	}
}

func TestComplete(t *testing.T) {
	ms := dag.NewMemStore()
	ctx := context.Background()
	data := make([]byte, 300000)
	root, _, err := dag.ImportFile(ctx, bytesReader(data), ms, dag.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Complete(ctx, ms, root, Recursive); err != nil {
		t.Fatalf("complete DAG: %v", err)
	}
	ms.Set(root, []byte("garbage"))
	if err := Complete(ctx, ms, root, Direct); !errors.Is(err, dag.ErrHashMismatch) {
		t.Fatalf("corrupt root, direct: %v", err)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// TestAddMany checks AddMany, Count and Each, with records the fast
// decoding path reads (recursive, no name) and those it leaves to JSON.
func TestAddMany(t *testing.T) {
	bs, err := blockstore.Open(filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	s := New(bs.Keyspace('p'))
	ctx := context.Background()
	want := map[string]Pin{}
	var list []Pin
	for i, mode := range []Mode{Recursive, Recursive, Direct, Recursive} {
		p := Pin{Cid: dag.Sum(dag.Raw, []byte{byte(i)}), Mode: mode}
		if i == 3 {
			p.Name = "named"
		}
		list = append(list, p)
		want[p.Cid.KeyString()] = p
	}
	if err := s.AddMany(ctx, list); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMany(ctx, []Pin{{Cid: list[0].Cid, Mode: "sideways"}}); err == nil {
		t.Fatal("bad mode accepted")
	}
	if n, err := s.Count(ctx); err != nil || n != len(list) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(list))
	}
	err = s.Each(ctx, func(p Pin) error {
		if w := want[p.Cid.KeyString()]; w != p {
			t.Errorf("Each gave %+v, want %+v", p, w)
		}
		delete(want, p.Cid.KeyString())
		return nil
	})
	if err != nil || len(want) != 0 {
		t.Fatalf("Each: %v; not seen: %v", err, want)
	}
}

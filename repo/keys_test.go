package repo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/share-p2p/share/errs"
)

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir); err != nil {
		t.Fatal(err)
	}
	ks := KeysOf(dir)
	k, err := ks.Gen("blog")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeysDir, "blog"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if _, err := ks.Gen("blog"); !errs.Is(errs.Exist, err) {
		t.Errorf("Gen of an existing name: %v, want kind exists", err)
	}
	list, err := ks.List()
	if err != nil || len(list) != 2 || list[0].Name != SelfKey || list[1] != k {
		t.Fatalf("List = %v, %v", list, err)
	}
	id, _ := LoadIdentity(dir)
	if list[0].ID != id.ID {
		t.Error("self is not the identity")
	}
	for _, bad := range []string{"self", "", "../x", ".hidden", "a/b"} {
		if _, err := ks.Gen(bad); !errs.Is(errs.Invalid, err) {
			t.Errorf("Gen(%q): %v, want kind invalid", bad, err)
		}
	}
	if err := ks.Remove("self"); !errs.Is(errs.Invalid, err) {
		t.Errorf("Remove(self): %v, want kind invalid", err)
	}
	if err := ks.Remove("blog"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Private("blog"); !errs.Is(errs.NotFound, err) {
		t.Errorf("Private of a removed key: %v, want kind not found", err)
	}
	if err := ks.Remove("blog"); !errs.Is(errs.NotFound, err) {
		t.Errorf("Remove twice: %v", err)
	}
}

package repo

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p/peer"
)

// KeysDir is the directory of the named keys inside a repository.
const KeysDir = "keys"

// SelfKey is the name of the node's own key (the identity), which names
// the node's IPNS name and cannot be removed or made.
const SelfKey = "self"

var keyName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

// Key is a named key: its name and the PeerID its IPNS name is of.
type Key struct {
	Name string
	ID   peer.ID
}

// Keys is the keystore of a repository: ed25519 keys in files of mode
// 0600 under keys/, one per name, in the identity key's format. It works
// on the files alone, so the CLI uses it beside a running daemon, which
// reads a key when it publishes with it.
type Keys struct {
	repo string // the repository's path
}

// KeysOf returns the keystore of the repository at path.
func KeysOf(path string) *Keys { return &Keys{repo: path} }

func (k *Keys) file(name string) string { return filepath.Join(k.repo, KeysDir, name) }

// checkName refuses names that are not file-name safe, and self.
func checkName(name string) error {
	if name == SelfKey {
		return errs.Errorf(errs.Invalid, "key %q is the node's own key", name)
	}
	if !keyName.MatchString(name) {
		return errs.Errorf(errs.Invalid, "key name %q: want 1-64 letters, digits, '.', '_' or '-', not starting with '.', '_' or '-'", name)
	}
	return nil
}

// Gen makes a new key called name; a key of that name is an error of
// kind errs.Exist.
func (k *Keys) Gen(name string) (Key, error) {
	if err := checkName(name); err != nil {
		return Key{}, err
	}
	if err := os.MkdirAll(filepath.Join(k.repo, KeysDir), 0o700); err != nil {
		return Key{}, fmt.Errorf("key gen %s: %w", name, err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, err
	}
	err = writeFile(k.file(name), peer.MarshalPrivateKey(priv), 0o600, false)
	if errors.Is(err, os.ErrExist) {
		return Key{}, errs.Errorf(errs.Exist, "key %q exists", name)
	}
	if err != nil {
		return Key{}, fmt.Errorf("key gen %s: %w", name, err)
	}
	id, err := peer.IDFromPublicKey(pub)
	return Key{Name: name, ID: id}, err
}

// Private returns the key called name; SelfKey (or "") is the identity.
// A key that does not exist is an error of kind errs.NotFound.
func (k *Keys) Private(name string) (ed25519.PrivateKey, error) {
	if name == "" || name == SelfKey {
		id, err := LoadIdentity(k.repo)
		if err != nil {
			return nil, err
		}
		return id.Key, nil
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(k.file(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errs.Errorf(errs.NotFound, "no key %q (make one with 'share key gen %s')", name, name)
	}
	if err != nil {
		return nil, err
	}
	priv, err := peer.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, errs.E(errs.Corrupt, fmt.Errorf("key %s: %w", k.file(name), err))
	}
	return priv, nil
}

// List returns self and the named keys, by name.
func (k *Keys) List() ([]Key, error) {
	self, err := LoadIdentity(k.repo)
	if err != nil {
		return nil, err
	}
	out := []Key{{Name: SelfKey, ID: self.ID}}
	ents, err := os.ReadDir(filepath.Join(k.repo, KeysDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || checkName(e.Name()) != nil {
			continue // temporary files of a Gen under way
		}
		priv, err := k.Private(e.Name())
		if err != nil {
			return nil, err
		}
		id, _ := peer.IDFromPublicKey(priv.Public().(ed25519.PublicKey))
		out = append(out, Key{Name: e.Name(), ID: id})
	}
	slices.SortFunc(out[1:], func(a, b Key) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Remove deletes the key called name; self cannot be removed.
func (k *Keys) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := os.Remove(k.file(name))
	if errors.Is(err, os.ErrNotExist) {
		return errs.Errorf(errs.NotFound, "no key %q", name)
	}
	return err
}

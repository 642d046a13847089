// Package repo manages a share repository on disk: its directory
// ($SHARE_PATH, default ~/.share), config.json, the node's identity key,
// the process lock and the Pebble blockstore inside it.
package repo

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/share-p2p/share/blockstore"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/p2p/peer"
)

// File names inside a repository.
const (
	ConfigFile   = "config.json"
	KeyFile      = "identity.key"
	SwarmKeyFile = "swarm.key"
	LockFile     = "repo.lock"
	DBDir        = "db"
	APISocket    = "api.sock"
)

// ErrInUse is returned when another process holds the repository (kind
// errs.InUse).
var ErrInUse = errs.New(errs.InUse, "repository is in use by another process")

// DefaultPath returns $SHARE_PATH, or ~/.share when it is unset.
func DefaultPath() (string, error) {
	if p := os.Getenv("SHARE_PATH"); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the home directory (set SHARE_PATH): %w", err)
	}
	return filepath.Join(home, ".share"), nil
}

// Init creates a repository at path if it has none: the directory, a default
// config.json and a fresh ed25519 identity (mode 0600). It reports whether it
// created anything. An existing repository is left untouched.
func Init(path string) (created bool, err error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return false, fmt.Errorf("create repository: %w", err)
	}
	if _, err := os.Stat(filepath.Join(path, KeyFile)); errors.Is(err, os.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return false, err
		}
		if err := writeFileAtomic(filepath.Join(path, KeyFile), peer.MarshalPrivateKey(priv), 0o600); err != nil {
			return false, fmt.Errorf("write identity: %w", err)
		}
		created = true
	} else if err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(path, ConfigFile)); errors.Is(err, os.ErrNotExist) {
		if err := WriteConfig(filepath.Join(path, ConfigFile), Default()); err != nil {
			return false, fmt.Errorf("write config: %w", err)
		}
		created = true
	} else if err != nil {
		return false, err
	}
	return created, nil
}

// Identity is a node's key pair and PeerID.
type Identity struct {
	Key ed25519.PrivateKey
	ID  peer.ID
}

// LoadIdentity reads the identity key of the repository at path.
func LoadIdentity(path string) (*Identity, error) {
	b, err := os.ReadFile(filepath.Join(path, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	priv, err := peer.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(path, KeyFile), err)
	}
	id, err := peer.IDFromPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &Identity{Key: priv, ID: id}, nil
}

// Repo is an open repository. It holds an exclusive lock on the directory
// until Close, because Pebble is single-process.
type Repo struct {
	Path     string
	config   atomic.Pointer[Config]
	Identity *Identity
	Blocks   *blockstore.Store
	lock     *os.File
}

// Open initialises the repository at path if needed, locks it and opens
// its blockstore. A repository held by another process gives ErrInUse.
func Open(path string) (*Repo, error) {
	if _, err := Init(path); err != nil {
		return nil, err
	}
	lock, err := Lock(path)
	if err != nil {
		return nil, err
	}
	r := &Repo{Path: path, lock: lock}
	c, err := LoadConfig(filepath.Join(path, ConfigFile))
	if err != nil {
		r.Close()
		return nil, err
	}
	r.config.Store(c)
	if r.Identity, err = LoadIdentity(path); err != nil {
		r.Close()
		return nil, err
	}
	if r.Blocks, err = blockstore.Open(filepath.Join(path, DBDir), &blockstore.Options{CacheSize: 8 << 20}); err != nil {
		r.Close()
		if errors.Is(err, blockstore.ErrLocked) {
			return nil, inUse(path)
		}
		return nil, fmt.Errorf("open blockstore: %w", err)
	}
	return r, nil
}

// Lock takes the repository's process lock without blocking, and writes
// this process's ID in the lock file, so that a process that finds the
// repository in use can say which process holds it (Holder).
func Lock(path string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(path, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock repository: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, inUse(path)
		}
		return nil, fmt.Errorf("lock repository: %w", err)
	}
	// The ID only informs: the lock holds without it, and a reader that
	// finds none says less.
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// Holder returns the ID of the process that holds the lock of the
// repository at path, as that process wrote it, or 0 if it is not known.
// It means something only while the lock is held.
func Holder(path string) int {
	b, err := os.ReadFile(filepath.Join(path, LockFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// inUse is ErrInUse for the repository at path, naming the process that
// holds it when known.
func inUse(path string) error {
	if pid := Holder(path); pid > 0 {
		return fmt.Errorf("%s: %w (pid %d)", path, ErrInUse, pid)
	}
	return fmt.Errorf("%s: %w", path, ErrInUse)
}

// SaveConfig validates c, writes it and makes it the repository's config.
func (r *Repo) SaveConfig(c *Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := WriteConfig(filepath.Join(r.Path, ConfigFile), c); err != nil {
		return err
	}
	r.config.Store(c)
	return nil
}

// Config returns the current configuration. A daemon may replace it
// (SaveConfig) while other goroutines read it: treat it as read-only.
func (r *Repo) Config() *Config { return r.config.Load() }

// Close closes the blockstore and releases the lock.
func (r *Repo) Close() error {
	var err error
	if r.Blocks != nil {
		err = r.Blocks.Close()
	}
	if r.lock != nil {
		r.lock.Close()
	}
	return err
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it into place, so a crash leaves either the old or the new file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeFile(path, data, mode, true)
}

// writeFile writes data to a temporary file beside path and syncs it, then
// renames it over path (replace) or links it to path, failing with
// os.ErrExist if path exists (!replace); the file is complete before it
// appears under its name, and the directory is synced.
func writeFile(path string, data []byte, mode os.FileMode, replace bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	place := os.Link
	if replace {
		place = os.Rename
	}
	if err := place(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

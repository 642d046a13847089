package repo

import (
	"path/filepath"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/ipns"
)

// FollowConfig is a name the daemon follows: it keeps Dir at the newest
// version Name points at (share follow NAME -o DIR, for as long as the
// daemon runs).
type FollowConfig struct {
	// Name is an IPNS name (k51..., 12D3KooW... or /ipns/NAME).
	Name string
	// Dir is the folder written, an absolute path.
	Dir string
	// Keep keeps each previous version pinned.
	Keep bool `json:",omitempty"`
}

// validateFollow checks the Follow list: names that parse, absolute
// folders, none twice.
func (c *Config) validateFollow() error {
	dirs := map[string]bool{}
	for i, f := range c.Follow {
		if _, err := ipns.ParseName(f.Name); err != nil {
			return errs.Errorf(errs.Invalid, "config Follow[%d].Name: %v", i, err)
		}
		if !filepath.IsAbs(f.Dir) {
			return errs.Errorf(errs.Invalid, "config Follow[%d].Dir %q: want an absolute path", i, f.Dir)
		}
		d := filepath.Clean(f.Dir)
		if dirs[d] {
			return errs.Errorf(errs.Invalid, "config Follow[%d].Dir %q: followed twice", i, f.Dir)
		}
		dirs[d] = true
	}
	return nil
}

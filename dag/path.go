package dag

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
)

// Path names content as kubo's paths do: a root CID and the names of the
// directory entries to follow from it. Every surface that takes content
// (the CLI's arguments, the daemon API's ?arg=, the gateway's URLs) parses
// it with ParsePath and resolves it with Resolve.
type Path struct {
	Root     cid.Cid
	Segments []string // entry names, none empty, "." or ".."
}

// PathOf is the path of c itself.
func PathOf(c cid.Cid) Path { return Path{Root: c} }

// ParsePath parses the forms kubo writes: CID, CID/a/b, /ipfs/CID,
// /ipfs/CID/a/b and ipfs://CID/a/b. Empty segments (a//b, a trailing
// slash) are dropped. A malformed path or CID is of kind errs.Invalid,
// naming s; /ipns/ names are errs.Unsupported.
func ParsePath(s string) (Path, error) {
	rest, err := trimNamespace(s)
	if err != nil {
		return Path{}, err
	}
	first, tail, hasTail := strings.Cut(rest, "/")
	c, err := cid.Decode(first)
	if err != nil {
		if !hasTail && rest == s {
			return Path{}, errs.Errorf(errs.Invalid, "invalid CID %q: %v", s, err)
		}
		return Path{}, errs.Errorf(errs.Invalid, "invalid path %q: invalid CID %q: %v", s, first, err)
	}
	p := Path{Root: c}
	for seg := range strings.SplitSeq(tail, "/") {
		switch seg {
		case "":
			continue
		case ".", "..":
			return Path{}, errs.Errorf(errs.Invalid, "invalid path %q: no . or .. segments", s)
		}
		p.Segments = append(p.Segments, seg)
	}
	return p, nil
}

// trimNamespace drops the /ipfs/ or ipfs:// before the CID.
func trimNamespace(s string) (string, error) {
	for _, ns := range []string{"/ipns/", "ipns://"} {
		if strings.HasPrefix(s, ns) {
			return "", errs.Errorf(errs.Unsupported, "%q: IPNS names are not supported yet (give /ipfs/CID/...)", s)
		}
	}
	for _, ns := range []string{"/ipfs/", "ipfs://"} {
		if rest, ok := strings.CutPrefix(s, ns); ok {
			return rest, nil
		}
	}
	if strings.HasPrefix(s, "/") {
		return "", errs.Errorf(errs.Invalid, "invalid path %q: want CID, CID/PATH or /ipfs/CID/PATH", s)
	}
	return s, nil
}

// String is the path as CID/a/b (kubo's canonical form is "/ipfs/" and
// this).
func (p Path) String() string {
	if len(p.Segments) == 0 {
		return p.Root.String()
	}
	return p.Root.String() + "/" + strings.Join(p.Segments, "/")
}

// Base is the last segment, or the root CID of a path without any: the
// name kubo's get writes the content under.
func (p Path) Base() string {
	if len(p.Segments) == 0 {
		return p.Root.String()
	}
	return p.Segments[len(p.Segments)-1]
}

// prefix is the path of the first n segments.
func (p Path) prefix(n int) Path { return Path{Root: p.Root, Segments: p.Segments[:n]} }

// Resolve follows p's segments from its root through directories, plain
// or HAMT-sharded (fetching only the blocks on the way), and returns the
// CID p names. A name that is not there, or one under a file, is a
// *NoLinkError (kind errs.NotFound, and errors.Is ErrNoLink); a block
// that cannot be read is that error, naming the path.
func Resolve(ctx context.Context, g share.Getter, p Path) (cid.Cid, error) {
	c := p.Root
	for i, name := range p.Segments {
		l, err := Lookup(ctx, g, c, name)
		switch {
		case errors.Is(err, ErrNoLink) || errors.Is(err, ErrNotDir):
			return cid.Undef, &NoLinkError{Path: p, Missing: i}
		case err != nil:
			return cid.Undef, errs.E(errs.Path(p.String()), err)
		}
		c = l.Hash
	}
	return c, nil
}

// NoLinkError is a path whose segment Missing is not an entry of what
// the segments before it name.
type NoLinkError struct {
	Path    Path
	Missing int
}

func (e *NoLinkError) Error() string {
	return fmt.Sprintf("%s: no link named %q under %s", e.Path, e.Path.Segments[e.Missing], e.Path.prefix(e.Missing))
}

// Unwrap is ErrNoLink, which gives the error its kind.
func (e *NoLinkError) Unwrap() error { return ErrNoLink }

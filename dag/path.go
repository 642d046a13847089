package dag

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/ipns"
)

// Path names content as kubo's paths do: a root CID and the names of the
// directory entries to follow from it. Every surface that takes content
// (the CLI's arguments, the daemon API's ?arg=, the gateway's URLs) parses
// it with ParsePath and resolves it with Resolve.
type Path struct {
	Root cid.Cid
	// Name, when not empty, is the IPNS name (ipns.ParseName reads it)
	// the path starts from instead of Root: /ipns/NAME/a/b. Resolving it
	// takes the network (node.Resolve); Resolve here refuses it.
	Name     string
	Segments []string // entry names, none empty, "." or ".."
}

// PathOf is the path of c itself.
func PathOf(c cid.Cid) Path { return Path{Root: c} }

// ParsePath parses the forms kubo writes: CID, CID/a/b, /ipfs/CID,
// /ipfs/CID/a/b and ipfs://CID/a/b, and IPNS paths of key names:
// /ipns/NAME/a/b and ipns://NAME/a/b. Empty segments (a//b, a trailing
// slash) are dropped. A malformed path, CID or name is of kind
// errs.Invalid, naming s; DNSLink names (/ipns/example.com) are
// errs.Unsupported.
func ParsePath(s string) (Path, error) {
	if rest, ok := cutIPNS(s); ok {
		return parseIPNS(s, rest)
	}
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
	return withSegments(Path{Root: c}, s, tail)
}

// cutIPNS returns what follows /ipns/ or ipns:// in s.
func cutIPNS(s string) (string, bool) {
	for _, ns := range []string{"/ipns/", "ipns://"} {
		if rest, ok := strings.CutPrefix(s, ns); ok {
			return rest, true
		}
	}
	return "", false
}

// parseIPNS parses the NAME/a/b after /ipns/ in s.
func parseIPNS(s, rest string) (Path, error) {
	name, tail, _ := strings.Cut(rest, "/")
	if _, err := ipns.ParseName(name); err != nil {
		if strings.Contains(name, ".") {
			return Path{}, errs.Errorf(errs.Unsupported, "%q: DNSLink names are not supported (give /ipns/ and the name of a key, k51...)", s)
		}
		return Path{}, errs.Errorf(errs.Invalid, "invalid path %q: %v", s, err)
	}
	return withSegments(Path{Name: name}, s, tail)
}

// withSegments adds the segments of tail, the rest of s, to p.
func withSegments(p Path, s, tail string) (Path, error) {
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
// this), or /ipns/NAME/a/b.
func (p Path) String() string {
	root := p.Root.String()
	if p.Name != "" {
		root = "/ipns/" + p.Name
	}
	if len(p.Segments) == 0 {
		return root
	}
	return root + "/" + strings.Join(p.Segments, "/")
}

// Base is the last segment, or the root CID (or name) of a path without
// any: the name kubo's get writes the content under.
func (p Path) Base() string {
	if len(p.Segments) == 0 {
		if p.Name != "" {
			return p.Name
		}
		return p.Root.String()
	}
	return p.Segments[len(p.Segments)-1]
}

// prefix is the path of the first n segments.
func (p Path) prefix(n int) Path { return Path{Root: p.Root, Name: p.Name, Segments: p.Segments[:n]} }

// ErrUnresolvedName is the error of Resolve given a path of an IPNS name:
// the caller resolves the name first (node.Resolve does).
var ErrUnresolvedName = errs.New(errs.Unsupported, "IPNS name not resolved")

// Resolve follows p's segments from its root through directories, plain
// or HAMT-sharded (fetching only the blocks on the way), and returns the
// CID p names. A name that is not there, or one under a file, is a
// *NoLinkError (kind errs.NotFound, and errors.Is ErrNoLink); a block
// that cannot be read is that error, naming the path.
func Resolve(ctx context.Context, g share.Getter, p Path) (cid.Cid, error) {
	if p.Name != "" {
		return cid.Undef, fmt.Errorf("%s: %w", p, ErrUnresolvedName)
	}
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

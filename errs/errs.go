// Package errs gives errors a kind, so that every surface says the same
// thing about them: the CLI picks its line, hint and exit status by kind,
// the daemon API carries the kind in its JSON (so the CLI never matches
// error text, and says the same with and without a daemon), and the
// gateway picks its HTTP status by kind.
//
// An error is built with E from an operation, a kind, the CID or path it is
// about and the error underneath, each optional:
//
//	errs.E("pin add", errs.NotFound, c, err)
//
// and reads "pin add bafy...: not found: ..." with the parts that the error
// underneath already says left out, so that a chain of wrappers never names
// a CID twice.
package errs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/ipfs/go-cid"
)

// Kind classifies an error by what a user (or a caller) can do about it.
type Kind uint8

// The kinds. Other is the zero value: an error nobody classified.
const (
	Other        Kind = iota
	NotFound          // the block, pin, file or key does not exist (here, or on the network)
	Invalid           // bad input: a malformed CID, path, flag or config value
	Corrupt           // stored or received bytes do not match their hash, or do not decode
	Timeout           // nothing arrived in time
	NoSpace           // the disk is full
	InUse             // the repository is held by another process (a daemon)
	OtherNetwork      // the peer is on another network
	Unsupported       // a hash, codec or feature this build does not handle
	Canceled          // the caller gave up (Ctrl-C)
	Exist             // already exists
	Unreachable       // no peer that has it could be reached
)

var kindNames = [...]string{
	Other:        "other",
	NotFound:     "not found",
	Invalid:      "invalid",
	Corrupt:      "corrupt",
	Timeout:      "timeout",
	NoSpace:      "no space",
	InUse:        "in use",
	OtherNetwork: "other network",
	Unsupported:  "unsupported",
	Canceled:     "canceled",
	Exist:        "exists",
	Unreachable:  "unreachable",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// MarshalText names the kind, for the API's JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name; an unknown name is Other (a newer
// daemon may know kinds this client does not).
func (k *Kind) UnmarshalText(b []byte) error {
	*k = Other
	for i, n := range kindNames {
		if n == string(b) {
			*k = Kind(i)
		}
	}
	return nil
}

// Op names the operation that failed ("pin add", "get", "store").
type Op string

// Path names the file, directory or gateway path an error is about.
type Path string

// Error is an error with an operation, a kind and a subject.
type Error struct {
	Op   Op
	Kind Kind
	// Subject is the CID or path the error is about ("" if none).
	Subject string
	Err     error

	// leaf: built by New or Errorf, whose text is the message alone.
	leaf bool
}

// E builds an *Error from its arguments, in any order: an Op (or a plain
// string, taken as the Op), a Kind, a cid.Cid or a Path (the subject), and
// an error underneath. E panics on an argument of another type (a
// programming error). With no Kind, the error takes the kind of the error
// underneath.
func E(args ...any) error {
	e := &Error{}
	for _, a := range args {
		switch a := a.(type) {
		case Op:
			e.Op = a
		case string:
			e.Op = Op(a)
		case Kind:
			e.Kind = a
		case cid.Cid:
			if a.Defined() {
				e.Subject = a.String()
			}
		case Path:
			e.Subject = string(a)
		case *Error:
			e.Err = a
		case error:
			e.Err = a
		case nil:
		default:
			panic(fmt.Sprintf("errs.E: argument of type %T", a))
		}
	}
	return e
}

// New returns an error of kind k whose text is msg (a leaf error: the
// sentence a user reads after the operation and subject). The kind is not
// part of the text, so a package's named error made with New
// (dag.ErrHashMismatch) reads as it always did, and stays one value that
// errors.Is finds.
func New(k Kind, msg string) error { return &Error{Kind: k, Err: errors.New(msg), leaf: true} }

// Errorf is New with a format; %w wraps as fmt.Errorf does.
func Errorf(k Kind, format string, a ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, a...), leaf: true}
}

func (e *Error) Unwrap() error { return e.Err }

// Error reads "op subject: kind: underlying", leaving out a subject or a
// kind that the error underneath already states, and the kind when the
// underlying text already says it. An error made by New or Errorf reads as
// its message alone.
func (e *Error) Error() string {
	if e.leaf {
		return e.Err.Error()
	}
	var b strings.Builder
	pad := func(s string) {
		if b.Len() > 0 {
			b.WriteString(s)
		}
	}
	if e.Op != "" {
		b.WriteString(string(e.Op))
	}
	inner := ""
	if e.Err != nil {
		inner = e.Err.Error()
	}
	if e.Subject != "" && !strings.Contains(inner, e.Subject) {
		pad(" ")
		b.WriteString(e.Subject)
	}
	// When the text underneath starts with the subject ("bafy...: not
	// found"), it continues the op as the subject would: "get bafy...".
	sep := ": "
	if e.Subject != "" && strings.HasPrefix(inner, e.Subject) {
		sep = " "
	}
	if e.Kind != Other && !e.innerHasKind() && !strings.Contains(inner, e.Kind.String()) {
		pad(": ")
		b.WriteString(e.Kind.String())
		sep = ": "
	}
	if inner != "" {
		pad(sep)
		b.WriteString(inner)
	}
	return b.String()
}

// innerHasKind reports whether an *Error underneath has e's kind already.
func (e *Error) innerHasKind() bool {
	var in *Error
	return errors.As(e.Err, &in) && KindOf(in) == e.Kind
}

// KindOf returns the kind of err: that of the outermost *Error in its
// chain that has one, else what the standard library's errors in it say
// (a deadline is a Timeout, a cancellation Canceled, ENOSPC NoSpace, a
// missing file NotFound), else Other.
func KindOf(err error) Kind {
	if err == nil {
		return Other
	}
	for e := err; e != nil; {
		if x, ok := e.(*Error); ok && x.Kind != Other {
			return x.Kind
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			e = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				if k := KindOf(c); k != Other {
					return k
				}
			}
			e = nil
		default:
			e = nil
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, syscall.ENOSPC):
		return NoSpace
	case errors.Is(err, fs.ErrNotExist):
		return NotFound
	case errors.Is(err, fs.ErrExist):
		return Exist
	}
	return Other
}

// Is reports whether err is of kind k.
func Is(k Kind, err error) bool { return err != nil && KindOf(err) == k }

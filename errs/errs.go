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
// and reads "pin add bafy...: ..." with the subject left out when the error
// underneath already names it, so that a chain of wrappers never names a
// CID twice. Giving an error a kind never changes its text: the kind's name
// is written only when nothing underneath says what went wrong.
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
// sentence a user reads after the operation and subject).
func New(k Kind, msg string) error { return &Error{Kind: k, Err: errors.New(msg)} }

// Errorf is New with a format; %w wraps as fmt.Errorf does.
func Errorf(k Kind, format string, a ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, a...)}
}

func (e *Error) Unwrap() error { return e.Err }

// Error reads "op subject: underlying", leaving out a subject that the
// error underneath already names. The kind's name stands in for the
// underlying text only when there is none ("get bafy...: not found"): a
// kind classifies an error, it does not reword it.
func (e *Error) Error() string {
	inner := ""
	if e.Err != nil {
		inner = e.Err.Error()
	}
	var b strings.Builder
	b.WriteString(string(e.Op))
	if e.Subject != "" && !mentions(inner, e.Subject) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.Subject)
	}
	if inner == "" && e.Kind != Other {
		inner = e.Kind.String()
	}
	if inner != "" {
		switch {
		case b.Len() == 0:
		case e.Subject != "" && strings.HasPrefix(inner, e.Subject):
			// The inner text names the subject first: "pin bafy...:
			// not found", not "pin: bafy...: not found".
			b.WriteByte(' ')
		default:
			b.WriteString(": ")
		}
		b.WriteString(inner)
	}
	return b.String()
}

// mentions reports whether text names subject as a whole word: a path
// "a" is not named by "bad a.txt", a CID is by "block bafy...: ...".
func mentions(text, subject string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], subject)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(subject)
		if (start == 0 || isBoundary(text[start-1])) && (end == len(text) || isBoundary(text[end])) {
			return true
		}
		i = start + 1
	}
}

// isBoundary reports whether c may stand next to a name in a message.
func isBoundary(c byte) bool { return strings.IndexByte(" \t\n\"'`()[]{}<>:;,", c) >= 0 }

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

// Reason returns the text of the error in err's chain where its kind was
// given: the innermost *Error of that kind, else the innermost error the
// standard library's errors make of that kind (the ENOSPC under a chain
// of "write" and "put"), else err's whole text. It is what a user needs
// when the wrappers around it name only what was being done: "the disk is
// full: " + Reason(err).
func Reason(err error) string {
	if err == nil {
		return ""
	}
	k := KindOf(err)
	if k == Other {
		return err.Error()
	}
	var given, std error
	for e := err; e != nil; e = next(e, k) {
		if x, ok := e.(*Error); ok && x.Kind == k {
			given = x
		} else if KindOf(e) == k {
			std = e
		}
	}
	switch {
	case given != nil:
		return given.Error()
	case std != nil:
		return std.Error()
	}
	return err.Error()
}

// next is the error under e, or, under a join, the first one of kind k.
func next(e error, k Kind) error {
	switch u := e.(type) {
	case interface{ Unwrap() error }:
		return u.Unwrap()
	case interface{ Unwrap() []error }:
		for _, c := range u.Unwrap() {
			if KindOf(c) == k {
				return c
			}
		}
	}
	return nil
}

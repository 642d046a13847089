// Package chunker splits a byte stream into the chunks that become the
// leaves of a file's DAG. Only fixed-size chunking exists today; the Chunker
// interface leaves room for content-defined chunkers, which the importer
// would use unchanged.
package chunker

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const (
	// DefaultSize is the chunk size used when none is given: 1 MiB.
	DefaultSize = 1 << 20
	// MaxSize is the largest chunk size accepted: 4 MiB. Bigger blocks
	// would exceed what peers accept on the wire.
	MaxSize = 4 << 20
)

// ErrBadSpec is wrapped by the errors Parse returns.
var ErrBadSpec = errors.New("bad chunker spec")

// Chunker yields the successive chunks of one stream.
type Chunker interface {
	// Next reads the next chunk into buf, which it may grow when its
	// capacity is below the chunker's maximum chunk size, and returns the
	// chunk (a prefix of buf, or of the grown buffer). It never returns an
	// empty chunk: at the end of the stream it returns nil, io.EOF.
	Next(buf []byte) ([]byte, error)
}

// Spec describes how to chunk a stream. The zero Spec is the default,
// fixed chunks of DefaultSize bytes. It is a value that can be parsed from
// and printed as the command-line syntax ("size-N").
type Spec struct {
	size int // fixed chunk size; 0 means DefaultSize
}

// Default returns the default Spec, "size-1048576", which is the zero Spec.
func Default() Spec { return Spec{} }

// FixedSize returns the Spec of fixed chunks of n bytes; n must be in
// (0, MaxSize].
func FixedSize(n int) (Spec, error) {
	if n <= 0 || n > MaxSize {
		return Spec{}, fmt.Errorf("%w: size %d not in 1..%d", ErrBadSpec, n, MaxSize)
	}
	if n == DefaultSize {
		return Spec{}, nil // so that equal specs compare equal
	}
	return Spec{size: n}, nil
}

// Parse parses the chunker syntax of the command line: "size-N" where N is
// the chunk size in bytes, 0 < N <= MaxSize. The empty string means the
// default.
func Parse(s string) (Spec, error) {
	if s == "" {
		return Default(), nil
	}
	num, ok := strings.CutPrefix(s, "size-")
	if !ok {
		return Spec{}, fmt.Errorf("%w %q: want size-N", ErrBadSpec, s)
	}
	n, err := strconv.Atoi(num)
	if err != nil || num[0] == '+' || num[0] == '-' {
		return Spec{}, fmt.Errorf("%w %q: N is not a decimal number", ErrBadSpec, s)
	}
	sp, err := FixedSize(n)
	if err != nil {
		return Spec{}, fmt.Errorf("%w %q: size %d not in 1..%d", ErrBadSpec, s, n, MaxSize)
	}
	return sp, nil
}

// String returns the spec in the syntax Parse accepts.
func (s Spec) String() string { return "size-" + strconv.Itoa(s.MaxChunk()) }

// MaxChunk returns the largest chunk the spec produces, which is the buffer
// size callers should hand to Next.
func (s Spec) MaxChunk() int {
	if s.size == 0 {
		return DefaultSize
	}
	return s.size
}

// New returns a Chunker that splits r according to s.
func (s Spec) New(r io.Reader) Chunker {
	return &fixed{r: r, size: s.MaxChunk()}
}

// fixed cuts a stream into chunks of exactly size bytes, the last one
// shorter.
type fixed struct {
	r    io.Reader
	size int
	done bool
}

func (f *fixed) Next(buf []byte) ([]byte, error) {
	if f.done {
		return nil, io.EOF
	}
	if cap(buf) < f.size {
		buf = make([]byte, f.size)
	}
	n, err := io.ReadFull(f.r, buf[:f.size])
	switch err {
	case nil:
		return buf[:n], nil
	case io.ErrUnexpectedEOF:
		f.done = true
		return buf[:n], nil
	case io.EOF:
		f.done = true
		return nil, io.EOF
	default:
		return nil, err
	}
}

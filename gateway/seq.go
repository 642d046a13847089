package gateway

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
	"github.com/share-p2p/share/dag"
)

// seqMin is the smallest file worth a read-ahead pipeline: more than one
// default-sized leaf.
const seqMin = 1 << 20

// sequential reports whether a request with this Range header reads the
// file from some offset to its end: no range, or one open-ended range.
// Those are served with read-ahead; short ranges are not, since fetching
// blocks ahead of them would be waste.
func sequential(rng string) bool {
	if rng == "" {
		return true
	}
	spec, ok := strings.CutPrefix(rng, "bytes=")
	return ok && !strings.Contains(spec, ",") && strings.HasSuffix(strings.TrimSpace(spec), "-")
}

// seqReader is the io.ReadSeeker http.ServeContent reads a file through.
// Its Reads come from FileReader.WriteTo running in a goroutine, which
// fetches several leaves ahead (FileReader.Read fetches one at a time);
// the pipe between them holds no buffer, so memory stays at WriteTo's
// bounded read-ahead. A Read at another offset than the pipe's restarts it.
type seqReader struct {
	ctx    context.Context
	g      share.Getter
	root   cid.Cid
	size   int64
	fr     *dag.FileReader    // unused until the first pipe, or nil
	cancel context.CancelFunc // cancels fr's context

	off  int64 // the offset Seek set
	pr   *io.PipeReader
	pos  int64 // the offset of the next byte from pr
	done chan struct{}
}

var errStopped = errors.New("read-ahead stopped")

func (s *seqReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += s.off
	case io.SeekEnd:
		offset += s.size
	default:
		return 0, errors.New("seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	s.off = offset
	return offset, nil
}

func (s *seqReader) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	if s.pr == nil || s.pos != s.off {
		if err := s.start(); err != nil {
			return 0, err
		}
	}
	n, err := s.pr.Read(p)
	s.off += int64(n)
	s.pos += int64(n)
	return n, err
}

// start stops any pipe and starts one at s.off.
func (s *seqReader) start() error {
	s.Close()
	fr := s.fr
	s.fr = nil
	if fr == nil {
		// The last reader's context is cancelled: a new one is needed.
		ctx, cancel := context.WithCancel(s.ctx)
		var err error
		if fr, err = dag.NewFileReader(ctx, s.g, s.root); err != nil {
			cancel()
			return err
		}
		s.cancel = cancel
	}
	if _, err := fr.Seek(s.off, io.SeekStart); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := fr.WriteTo(pw)
		pw.CloseWithError(err) // nil: io.EOF for the reader
	}()
	s.pr, s.pos, s.done = pr, s.off, done
	return nil
}

// Close stops the pipe, if any, and waits for its goroutine.
func (s *seqReader) Close() error {
	if s.pr == nil {
		return nil
	}
	s.cancel()
	s.pr.CloseWithError(errStopped)
	<-s.done
	s.pr = nil
	return nil
}

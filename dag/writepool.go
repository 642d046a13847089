package dag

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/share-p2p/share"
)

// fileWriters is how many goroutines write a tree's small files. A file
// of a few KiB costs a create, a write and a close, each a system call
// that waits on the file system's locks, and its block from the getter,
// which waits on the network while a tree is fetched: one writer after
// the other spends most of its time waiting, and a few of them keep the
// disk and the fetch busy at once (a tree of 20 000 small files from a
// loopback daemon: see testdata/bench/smallget.sh).
const fileWriters = 4

// poolMaxSize is the largest file handed to the pool; bigger ones are
// written by the walker itself, so that the pool never holds more than a
// few reads ahead of big files at once.
const poolMaxSize = 1 << 20

// filePool writes files for the walker of a tree (writer.dir): the
// walker creates the directories in order and hands each small file to
// the pool, then waits for a directory's files before it sets the
// directory's mode and time.
type filePool struct {
	w    *writer
	ctx  context.Context // cancelled at the first error
	stop context.CancelFunc
	jobs chan fileJob
	wg   sync.WaitGroup // the workers

	mu  sync.Mutex
	err error // the first error
}

// fileJob is one file to write as path; b is its block if the walker
// fetched it already (the zero Block: the worker fetches it).
type fileJob struct {
	path string
	c    cid.Cid
	b    share.Block
	info Info
	dir  *sync.WaitGroup // the files of path's directory
}

// startPool starts the workers of w's pool; stop them with close.
func (w *writer) startPool(ctx context.Context) *filePool {
	p := &filePool{w: w, jobs: make(chan fileJob, fileWriters)}
	p.ctx, p.stop = context.WithCancel(ctx)
	for range fileWriters {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

func (p *filePool) work() {
	defer p.wg.Done()
	for j := range p.jobs {
		if p.failed() == nil {
			p.fail(p.w.create(p.ctx, j.path, j.c, j.b, j.info))
		} else {
			j.b.Release()
		}
		j.dir.Done()
	}
}

// submit hands the file j to a worker, waiting for one to be free; it
// fails once a file has failed or ctx ends.
func (p *filePool) submit(j fileJob) error {
	if err := p.failed(); err != nil {
		j.b.Release()
		return err
	}
	j.dir.Add(1)
	select {
	case p.jobs <- j:
		return nil
	case <-p.ctx.Done():
		j.dir.Done()
		j.b.Release()
		if err := p.failed(); err != nil {
			return err
		}
		return p.ctx.Err()
	}
}

// fail records err, the first one, and cancels the files still to come.
func (p *filePool) fail(err error) {
	if err == nil {
		return
	}
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.stop()
}

func (p *filePool) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// close waits for the workers to finish the files handed to them and
// returns the first error.
func (p *filePool) close() error {
	close(p.jobs)
	p.wg.Wait()
	p.stop()
	return p.failed()
}

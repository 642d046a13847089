package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/share-p2p/share/gc"
	"github.com/share-p2p/share/repo"
)

// autoGCInterval is how often AutoGC compares the repository with
// Datastore.StorageMax.
const autoGCInterval = time.Minute

// AutoGC runs until ctx ends: whenever the blocks take more than
// Datastore.StorageMax, it removes unpinned blocks until they take at most
// 90% of it, and logs what it did. Pins are never touched.
func (n *Node) AutoGC(ctx context.Context, logger *slog.Logger) {
	t := time.NewTicker(autoGCInterval)
	defer t.Stop()
	for {
		n.autoGCOnce(ctx, logger)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// autoGCOnce collects if the repository is over its limit; it reports
// what it freed.
func (n *Node) autoGCOnce(ctx context.Context, logger *slog.Logger) gc.Result {
	max, err := repo.ParseSize(n.Repo.Config().Datastore.StorageMax)
	if err != nil || max <= 0 {
		return gc.Result{}
	}
	n.invalidateStat()
	st, err := n.Stat(ctx)
	if err != nil || st.Bytes <= max {
		return gc.Result{}
	}
	need := st.Bytes - max*9/10
	res, err := gc.CollectUntil(ctx, &n.GCLock, n.Blocks, n.Pins, need)
	if err != nil {
		logger.Error("auto-gc failed", "err", err)
		return res
	}
	m := n.Metrics()
	m.GCRuns.Inc()
	m.GCFreedBlocks.Add(uint64(res.Blocks))
	m.GCFreedBytes.Add(uint64(res.Bytes))
	n.invalidateStat()
	logger.Warn("auto-gc: the repository was over Datastore.StorageMax",
		"size", st.Bytes, "max", max, "freedBytes", res.Bytes, "freedBlocks", res.Blocks)
	return res
}

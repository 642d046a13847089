package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/share-p2p/share/dag"
)

// parsePaths parses every argument as a CID or path (dag.ParsePath: CID,
// CID/a/b, /ipfs/CID/a/b), all before anything is done, so that a typo
// changes nothing. An error names the argument.
func parsePaths(args []string) ([]dag.Path, error) {
	ps := make([]dag.Path, len(args))
	for i, a := range args {
		p, err := dag.ParsePath(a)
		if err != nil {
			return nil, err
		}
		ps[i] = p
	}
	return ps, nil
}

// printJSON writes v as one line of JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// newBar returns a byte progress bar on w (total -1 when unknown).
func newBar(w io.Writer, total int64, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(), // bytes so far / total
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionFullWidth(),
		progressbar.OptionSetPredictTime(true),
	)
}

// endBar stops bar and, unless it finished (and cleared itself), clears
// it, so that what is printed next (an error) starts on a clean line.
func endBar(bar *progressbar.ProgressBar) {
	bar.Exit()
	if !bar.IsFinished() {
		bar.Clear()
	}
}

// humanBytes formats n with binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

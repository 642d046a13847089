package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

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

// narrowBarWidth is the width of the bar on a terminal whose width is
// unknown (a pty nobody sized, a serial console): what leaves room for
// the description and figures on 80 columns.
const narrowBarWidth = 15

// newBar returns a byte progress bar on w (total -1 when unknown), as wide
// as the terminal allows.
func newBar(w io.Writer, total int64, desc string) *progressbar.ProgressBar {
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(), // bytes so far / total
		progressbar.OptionSetWidth(narrowBarWidth),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	}
	if terminalWidth(w) > 0 {
		// Only then: the library takes a width of 0 as given and
		// draws an empty bar, "||".
		opts = append(opts, progressbar.OptionFullWidth())
	}
	return progressbar.NewOptions64(total, opts...)
}

// terminalWidth is the width of the terminal w is, 0 if unknown.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return cols
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

// displayName is a name as a line of human output shows it: as it is,
// unless it holds what would break or fake the line (a newline, a tab, a
// terminal escape, bytes that are not UTF-8) or starts with a quote; then
// Go-quoted ("a\nb"), as ls -b escapes such names. --json keeps names
// exact.
func displayName(name string) string {
	if strings.HasPrefix(name, `"`) || !printable(name) {
		return strconv.Quote(name)
	}
	return name
}

// printable reports whether s is UTF-8 whose runes are all printable
// (spaces included, control characters not).
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

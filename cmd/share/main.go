// Command share adds, finds, fetches and pins content-addressed files.
// See README.md for every command and option.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/share-p2p/share/api"
	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/node"
	"github.com/share-p2p/share/repo"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// globals are the flags every command shares.
type globals struct {
	json    bool
	quiet   bool
	verbose bool
	stdout  io.Writer
	stderr  io.Writer
}

// memoryLimit is the soft limit on the Go heap (GOMEMLIMIT overrides it):
// fetches and adds move gigabytes through short-lived buffers, and without
// it the heap of a process with 20 MB live grows to several times that
// between collections.
const memoryLimit = 96 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	if p := os.Getenv("SHARE_CPUPROFILE"); p != "" {
		// For people who measure: a CPU profile of this command.
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if p := os.Getenv("SHARE_TRACE"); p != "" {
		// An execution trace (go tool trace): where the goroutines wait.
		if f, err := os.Create(p); err == nil {
			trace.Start(f)
			defer trace.Stop()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		status := reportError(os.Stderr, err, jsonRequested(os.Args[1:]))
		pprof.StopCPUProfile()
		os.Exit(status)
	}
}

// errorJSON is an error as --json reports it, on stderr.
type errorJSON struct {
	Error  string // the line a user reads after "share: "
	Kind   string // errs.Kind's name: "not found", "invalid", ...
	Reason string // errs.Reason: the part that says what went wrong
}

// reportError writes the line for err on w (as JSON when asJSON) and
// returns the exit status.
func reportError(w io.Writer, err error, asJSON bool) int {
	line, status := errorLine(err)
	switch {
	case line == "":
	case asJSON:
		printJSON(w, errorJSON{line, errs.KindOf(err).String(), joinLines(errs.Reason(err))})
	default:
		fmt.Fprintln(w, "share: "+line)
	}
	return status
}

// jsonRequested reports whether args ask for --json, read from the
// arguments themselves, so that an error of the command line (a bad flag
// before --json, which stops the parse) is JSON too.
func jsonRequested(args []string) bool {
	on := false
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" {
			on = true
		} else if v, ok := strings.CutPrefix(a, "--json="); ok {
			on, _ = strconv.ParseBool(v)
		}
	}
	return on
}

// Hints for the kinds of error a user can do something about.
const (
	inUseHint   = " (is a share daemon running? stop it, or wait for the other command to finish)"
	noSpaceHint = " (free some space, e.g. with 'share gc', and run it again: nothing was lost)"
	timeoutHint = " (is a node that has it running on this LAN or in Bootstrap?)"
)

// errorLine is the line (after "share: ") and the exit status for err: what
// went wrong and, where its kind says it, what to do. It reads the kind,
// never the text, so that a command says the same with and without a
// daemon; a hint that belongs to one error is in that error's text.
func errorLine(err error) (line string, status int) {
	if errors.Is(err, syscall.EPIPE) {
		// The reader of our output went away (`share cat CID | head`):
		// end quietly, as a write to a closed pipe would have, with the
		// status of a process killed by SIGPIPE.
		return "", 141
	}
	msg := joinLines(err.Error())
	switch errs.KindOf(err) {
	case errs.Canceled:
		// The status of a command stopped by Ctrl-C (128+SIGINT), which
		// shells and scripts read as "interrupted", not "failed".
		return "interrupted", 130
	case errs.InUse:
		return msg + inUseHint, 1
	case errs.NoSpace:
		// The wrappers name the block; the user needs the disk.
		return "the disk is full: " + joinLines(errs.Reason(err)) + noSpaceHint, 1
	case errs.Timeout:
		return msg + timeoutHint, 1
	}
	return msg, 1
}

// joinLines makes a message one line.
func joinLines(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "share",
		Short: "share: content-addressed file sharing, fast, on a LAN with no configuration",
		Long: `share adds files and directories to a local content-addressed repository,
prints their CIDs, and fetches content by CID from peers.

The repository lives in $SHARE_PATH (default ~/.share); every command
initialises it on first use.`,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		SilenceErrors:     true,
		Version:           version,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			level := slog.LevelWarn
			if cmd.Name() == "daemon" && !g.quiet {
				level = slog.LevelInfo
			}
			if g.verbose {
				level = slog.LevelDebug
			}
			hopts := &slog.HandlerOptions{Level: level}
			var h slog.Handler = slog.NewTextHandler(g.stderr, hopts)
			if g.json {
				// With --json, every line on stderr is JSON too.
				h = slog.NewJSONHandler(g.stderr, hopts)
			}
			slog.SetDefault(slog.New(h))
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print only what scripts need; no progress")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log debug information to stderr")
	root.AddCommand(
		initCmd(g), addCmd(g), catCmd(g), getCmd(g), lsCmd(g), pinCmd(g), gcCmd(g),
		repoCmd(g), configCmd(g), idCmd(g), daemonCmd(g), connectCmd(g), peersCmd(g),
		exportCmd(g), importCmd(g), completionCmd(g), bootstrapCmd(g), provideCmd(g), routingCmd(g),
		versionCmd(g), sendCmd(g), receiveCmd(g), nameCmd(g), keyCmd(g), pubsubCmd(g), followCmd(g),
	)
	// --version prints what `share version` does (the template is text,
	// not a template of cobra's: it holds no field).
	root.SetVersionTemplate(strings.ReplaceAll(buildVersion().String(), "{{", "{{`{{`}}"))
	strictUsage(root)
	return root
}

// repoPath returns the repository directory from $SHARE_PATH.
func repoPath() (string, error) { return repo.DefaultPath() }

// openNode returns the API of the daemon serving the repository, if one
// runs, or else the repository opened in this process.
func openNode() (node.API, error) {
	p, err := repoPath()
	if err != nil {
		return nil, err
	}
	if c, err := api.Dial(filepath.Join(p, repo.APISocket)); err == nil {
		return c, nil
	}
	n, err := node.Open(p)
	if err != nil {
		return nil, err
	}
	// Without a daemon, content that is not here comes through a
	// temporary node, started only when needed.
	n.SetOnline(func(ctx context.Context) (*node.Network, error) {
		return n.StartNetwork(ctx, node.NetworkOptions{
			Logger:      slog.Default(),
			ListenAddrs: node.EphemeralAddrs(n.Repo.Config().Addresses.Listen),
			Temporary:   true,
		})
	})
	return n, nil
}

// withNode runs fn with a node and closes it afterwards.
func withNode(fn func(n node.API) error) error {
	n, err := openNode()
	if err != nil {
		return err
	}
	err = fn(n)
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	return err
}

// showProgress reports whether a progress bar belongs on stderr.
func (g *globals) showProgress() bool {
	if g.quiet || g.json {
		return false
	}
	f, ok := g.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

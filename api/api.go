// Package api is the local HTTP API of a running daemon, served on the unix
// socket $SHARE_PATH/api.sock (mode 0600), and its client. The client
// implements node.API, so the CLI runs the same code whether it talks to a
// daemon or opens the repository itself.
//
// Requests are POSTs to /v0/<command> with arguments in the query string.
// Short answers are one JSON value. Long operations (add, get, pin verify,
// repo verify) stream NDJSON events: {"Progress":N}, {"Added":{...}},
// {"Pin":{...}}, then one final {"Result":...} or {"Error":"..."}. cat
// streams the bytes themselves; an error after the first byte arrives in the
// Share-Error trailer.
package api

import (
	"encoding/json"
	"errors"

	"github.com/share-p2p/share/node"
)

// event is one NDJSON line of a streaming answer.
type event struct {
	Progress *int64          `json:",omitempty"`
	Fetch    *node.Progress  `json:",omitempty"`
	Added    *addedJSON      `json:",omitempty"`
	Pin      *pinJSON        `json:",omitempty"`
	Provider *providerJSON   `json:",omitempty"`
	Result   json.RawMessage `json:",omitempty"`
	Error    string          `json:",omitempty"`
}

type addedJSON struct {
	Name string
	Cid  string
	Size uint64
}

type pinJSON struct {
	Cid  string
	Mode string
	Name string `json:",omitempty"`
	Err  string `json:",omitempty"`
}

type errorJSON struct {
	Error string
}

// errTrailer is the trailer that carries an error that happened mid-stream.
const errTrailer = "Share-Error"

// remoteError is an error reported by the daemon; its text is the daemon's.
type remoteError struct{ msg string }

func (e *remoteError) Error() string { return e.msg }

// IsRemote reports whether err came from the daemon.
func IsRemote(err error) bool {
	var r *remoteError
	return errors.As(err, &r)
}

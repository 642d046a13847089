// Package api is the local HTTP API of a running daemon, served on the unix
// socket $SHARE_PATH/api.sock (mode 0600), and its client. The client
// implements node.API, so the CLI runs the same code whether it talks to a
// daemon or opens the repository itself.
//
// Requests are POSTs to /v0/<command> with arguments in the query string.
// The content a command is about is ?arg=, a CID or a path (CID/a/b,
// /ipfs/CID/a/b, see dag.ParsePath), resolved before the command runs;
// /v0/resolve?arg=PATH answers {"Cid":"..."}, the CID a path names.
// Short answers are one JSON value. Long operations (add, get, pin verify,
// repo verify) stream NDJSON events: {"Progress":N}, {"Added":{...}},
// {"Pin":{...}}, then one final {"Result":...} or error. cat and export
// stream the bytes themselves; an error after the first byte arrives in
// trailers.
//
// An error is {"Error":"text","Kind":"not found"} (the kind's name, see
// errs.Kind; "other" when it has none), with "Reason":"..." when the text
// where the kind was given (errs.Reason) is not the whole text. In
// trailers, the same are Share-Error, Share-Error-Kind and
// Share-Error-Reason. The client turns them back into an error of that
// kind, so that the CLI says the same with and without a daemon.
package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/share-p2p/share/errs"
	"github.com/share-p2p/share/node"
)

// event is one NDJSON line of a streaming answer.
type event struct {
	Progress *int64             `json:",omitempty"`
	Fetch    *node.Progress     `json:",omitempty"`
	Added    *addedJSON         `json:",omitempty"`
	Pin      *pinJSON           `json:",omitempty"`
	Provider *providerJSON      `json:",omitempty"`
	Waiting  *waitingJSON       `json:",omitempty"`
	Refused  *refusedJSON       `json:",omitempty"`
	Message  *MessageJSON       `json:",omitempty"`
	Follow   *node.FollowUpdate `json:",omitempty"`
	Dropped  *int64             `json:",omitempty"` // pubsub messages missed since the last event
	Result   json.RawMessage    `json:",omitempty"`
	errorJSON
}

// refusedJSON is a symlink a get did not write (dag.SafeLinks).
type refusedJSON struct{ Path, Target, Why string }

// waitingJSON is what a gc waits for: the roots of the fetches running.
type waitingJSON struct{ Fetches []string }

type addedJSON struct {
	Name string
	Cid  string
	Size uint64
}

// resolvedJSON is the answer of /v0/resolve.
type resolvedJSON struct{ Cid string }

type pinJSON struct {
	Cid  string
	Mode string
	Name string `json:",omitempty"`
	Err  string `json:",omitempty"`
}

// errorJSON is an error as the API carries it; in an event, all empty
// unless the event is an error.
type errorJSON struct {
	Error  string `json:",omitempty"`
	Kind   string `json:",omitempty"`
	Reason string `json:",omitempty"`
}

// errorOf is err's JSON.
func errorOf(err error) errorJSON {
	e := errorJSON{Error: err.Error(), Kind: errs.KindOf(err).String()}
	if r := errs.Reason(err); r != e.Error {
		e.Reason = r
	}
	return e
}

// err is the error the JSON describes, nil if none.
func (e errorJSON) err() error {
	if e.Error == "" {
		return nil
	}
	var k errs.Kind
	k.UnmarshalText([]byte(e.Kind))
	reason := e.Reason
	if reason == "" {
		reason = e.Error
	}
	return &remoteError{msg: e.Error, err: errs.New(k, reason)}
}

// The trailers that carry an error that happened mid-stream.
const (
	errTrailer    = "Share-Error"
	kindTrailer   = "Share-Error-Kind"
	reasonTrailer = "Share-Error-Reason"
)

// declareErrorTrailers announces the error trailers, before the body.
func declareErrorTrailers(w http.ResponseWriter) {
	w.Header().Set("Trailer", errTrailer+", "+kindTrailer+", "+reasonTrailer)
}

// setErrorTrailers sends err in the trailers, after the body.
func setErrorTrailers(w http.ResponseWriter, err error) {
	e := errorOf(err)
	h := w.Header()
	h.Set(errTrailer, e.Error)
	h.Set(kindTrailer, e.Kind)
	if e.Reason != "" {
		h.Set(reasonTrailer, e.Reason)
	}
}

// trailerError is the error in a response's trailers, nil if none.
func trailerError(t http.Header) error {
	return errorJSON{Error: t.Get(errTrailer), Kind: t.Get(kindTrailer), Reason: t.Get(reasonTrailer)}.err()
}

// remoteError is an error reported by the daemon; its text is the
// daemon's, and it wraps an error of the daemon's kind whose text is the
// reason.
type remoteError struct {
	msg string
	err error
}

func (e *remoteError) Error() string { return e.msg }

func (e *remoteError) Unwrap() error { return e.err }

// IsRemote reports whether err came from the daemon.
func IsRemote(err error) bool {
	var r *remoteError
	return errors.As(err, &r)
}

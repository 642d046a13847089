package errs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/ipfs/go-cid"
)

const cidText = "bafkr4ig4ljhnxasawambeqcsymycobuw7ftxdjr3iusquxax2maa5artku"

var testCID = cid.MustParse(cidText)

func TestErrorText(t *testing.T) {
	notHere := E(NotFound, testCID, errors.New("not found locally, and nothing arrived in time"))
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"op only", E("gc"), "gc"},
		{"kind only", E(NotFound), "not found"},
		{"op and subject and kind", E("get", NotFound, testCID), "get " + cidText + ": not found"},
		{"op and error", E("gc", errors.New("disk on fire")), "gc: disk on fire"},
		{"op and string op", E(Op("pin add"), testCID, errors.New("x")), "pin add " + cidText + ": x"},
		{"path subject", E("add", Path("/tmp/a"), errors.New("is a directory")), "add /tmp/a: is a directory"},
		{"undefined CID is no subject", E("get", cid.Undef, errors.New("x")), "get: x"},
		{"nil error is none", E("get", testCID, nil), "get " + cidText},
		// A kind classifies, it does not reword: the text is the error's.
		{"kind is not written over an error", E(Timeout, errors.New("nothing arrived in time")), "nothing arrived in time"},
		{"New is its message", New(Invalid, "bad flag"), "bad flag"},
		{"Errorf is its message", Errorf(Invalid, "bad %s %q", "size", "12XB"), `bad size "12XB"`},
		{"Errorf wraps", Errorf(NoSpace, "%w: 3 MiB free", errors.New("no space left on device")), "no space left on device: 3 MiB free"},
		// Wrapping never names a CID twice.
		{"subject said underneath", E("pin", testCID, notHere), "pin " + cidText + ": not found locally, and nothing arrived in time"},
		{"subject first underneath", E("get", testCID, E(NotFound, testCID)), "get " + cidText + ": not found"},
		{"subject said in a fmt chain", E("pin", testCID, fmt.Errorf("block %s: %w", testCID, errors.New("gone"))), "pin: block " + cidText + ": gone"},
		{"subject said three deep", E("pin add", testCID, E("fetch", testCID, E("store", testCID, errors.New("full")))), "pin add: fetch: store " + cidText + ": full"},
		{"kind said underneath", E("pin", NotFound, testCID, New(NotFound, "no such pin")), "pin " + cidText + ": no such pin"},
		// A subject is left out only when named as a whole word.
		{"path inside a longer path", E("add", Path("/tmp/a"), errors.New("open /tmp/a.txt: denied")), "add /tmp/a: open /tmp/a.txt: denied"},
		{"short path inside a word", E("add", Path("a"), errors.New("bad name")), "add a: bad name"},
		{"quoted subject", E("add", Path("a b"), errors.New(`open "a b": denied`)), `add: open "a b": denied`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	enospc := &fs.PathError{Op: "write", Path: "/db/000001.log", Err: syscall.ENOSPC}
	_, notExist := os.Stat("/nonexistent/share/errs/test")
	for _, tc := range []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, Other},
		{"plain", errors.New("x"), Other},
		{"E", E(NotFound, testCID), NotFound},
		{"New", New(InUse, "held"), InUse},
		{"no kind takes the one underneath", E("pin", testCID, New(Corrupt, "hash mismatch")), Corrupt},
		{"outermost kind wins", E(Unreachable, New(NotFound, "x")), Unreachable},
		{"through fmt %w", fmt.Errorf("a: %w", fmt.Errorf("b: %w", New(OtherNetwork, "other network"))), OtherNetwork},
		{"fmt %v loses it", fmt.Errorf("a: %v", New(NotFound, "x")), Other},
		{"join: first with a kind", errors.Join(errors.New("x"), New(Timeout, "slow"), New(NotFound, "y")), Timeout},
		{"join under fmt", fmt.Errorf("connect: %w", errors.Join(errors.New("refused"), New(OtherNetwork, "z"))), OtherNetwork},
		{"join under E without kind", E("connect", errors.Join(errors.New("refused"), New(Invalid, "z"))), Invalid},
		{"deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), Timeout},
		{"canceled", fmt.Errorf("get: %w", context.Canceled), Canceled},
		{"canceled under E without kind", E("get", testCID, context.Canceled), Canceled},
		{"deadline under a kind", E(NotFound, testCID, context.DeadlineExceeded), NotFound},
		{"ENOSPC", fmt.Errorf("put: %w", enospc), NoSpace},
		{"ENOSPC bare", syscall.ENOSPC, NoSpace},
		{"not exist", notExist, NotFound},
		{"fs.ErrNotExist", fmt.Errorf("read: %w", fs.ErrNotExist), NotFound},
		{"fs.ErrExist", fmt.Errorf("write: %w", fs.ErrExist), Exist},
	} {
		if got := KindOf(tc.err); got != tc.want {
			t.Errorf("%s: KindOf(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
		if tc.err != nil && !Is(tc.want, tc.err) {
			t.Errorf("%s: Is(%v, err) = false", tc.name, tc.want)
		}
	}
	if Is(Other, nil) {
		t.Error("Is(Other, nil) = true: nil is no error of any kind")
	}
}

// TestSentinelsSurvive: an *Error keeps errors.Is and errors.As working
// on what it wraps.
func TestSentinelsSurvive(t *testing.T) {
	sentinel := errors.New("no space left on device")
	err := E("put", testCID, Errorf(NoSpace, "%w: 3 MiB free", sentinel))
	if !errors.Is(err, sentinel) {
		t.Error("errors.Is lost the sentinel")
	}
	var e *Error
	if !errors.As(err, &e) || e.Op != "put" {
		t.Errorf("errors.As = %v", e)
	}
}

func TestReason(t *testing.T) {
	enospc := &fs.PathError{Op: "write", Path: "/db/000001.log", Err: syscall.ENOSPC}
	full := Errorf(NoSpace, "%w: 3 MiB free in /db", errors.New("no space left on device"))
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"no kind: all of it", fmt.Errorf("a: %w", errors.New("b")), "a: b"},
		{"where the kind was given", fmt.Errorf("add f: %w", E("put", testCID, fmt.Errorf("block %s: %w", testCID, full))), "no space left on device: 3 MiB free in /db"},
		{"innermost of the kind", E(NotFound, testCID, E("pin", New(NotFound, "no such pin"))), "no such pin"},
		{"another kind inside is not it", E(Timeout, "fetch", testCID, New(NotFound, "gone")), "fetch " + cidText + ": gone"},
		{"the errno under wrappers", fmt.Errorf("put %s: %w", testCID, enospc), "no space left on device"},
		{"a kind given over an errno", fmt.Errorf("add: %w", E(NoSpace, "store", enospc)), "store: write /db/000001.log: no space left on device"},
		{"through a join", fmt.Errorf("gc: %w", errors.Join(errors.New("x"), fmt.Errorf("y: %w", full))), "no space left on device: 3 MiB free in /db"},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("%s: Reason = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestKindText(t *testing.T) {
	for k := Other; k <= Unreachable; k++ {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Kind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("%v: round trip through %q gave %v, %v", k, b, back, err)
		}
	}
	// In JSON, as the daemon's API carries it.
	type answer struct {
		Error string
		Kind  Kind
	}
	b, err := json.Marshal(answer{"x", NoSpace})
	if err != nil || string(b) != `{"Error":"x","Kind":"no space"}` {
		t.Fatalf("json: %s, %v", b, err)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil || a.Kind != NoSpace {
		t.Fatalf("json back: %+v, %v", a, err)
	}
	// A newer daemon may know kinds this client does not: they are Other.
	for _, name := range []string{"brand new kind", "", "NotFound", "kind(3)"} {
		k := NotFound
		if err := k.UnmarshalText([]byte(name)); err != nil || k != Other {
			t.Errorf("UnmarshalText(%q) = %v, %v; want Other", name, k, err)
		}
	}
	if s := Kind(200).String(); s != "kind(200)" {
		t.Errorf("Kind(200) = %q", s)
	}
}

func TestEPanicsOnOtherTypes(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("E(42) did not panic")
		}
	}()
	E(42)
}

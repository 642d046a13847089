package traffic

import "time"

// HistoryLen is how many one-second points a History keeps: five minutes.
const HistoryLen = 300

// History is the node's throughput in and out over the last HistoryLen
// seconds, one point a second, for the status page's graph. It is fed
// the running totals; a second the sampler missed gets the average of the
// gap, so the time axis stays true. Not safe for concurrent use.
type History struct {
	in, out [HistoryLen]int64 // bytes per second, a ring
	n, head int

	started       bool
	at            time.Time // the last point's time
	lastIn, lastO int64     // the totals then
}

// add records the totals in and out at now.
func (h *History) add(now time.Time, in, out int64) {
	if !h.started {
		h.started, h.at, h.lastIn, h.lastO = true, now, in, out
		return
	}
	secs := int(now.Sub(h.at) / time.Second)
	if secs < 1 {
		return
	}
	din, dout := (in-h.lastIn)/int64(secs), (out-h.lastO)/int64(secs)
	for range min(secs, HistoryLen) {
		h.head = (h.head + 1) % HistoryLen
		h.in[h.head], h.out[h.head] = din, dout
		h.n = min(h.n+1, HistoryLen)
	}
	h.at = h.at.Add(time.Duration(secs) * time.Second)
	h.lastIn, h.lastO = in, out
}

// points returns the points held, oldest first, into fresh slices.
func (h *History) points() (in, out []int64) {
	in, out = make([]int64, h.n), make([]int64, h.n)
	for i := range h.n {
		j := (h.head - h.n + 1 + i + HistoryLen) % HistoryLen
		in[i], out[i] = h.in[j], h.out[j]
	}
	return in, out
}

package traffic

import "time"

// Window is the span over which a Rate measures the current speed.
const Window = 5 * time.Second

const (
	rateSamples = 16
	// rateStep is the least time between two kept samples: 16 samples
	// that far apart span twice the window, so one is always older than
	// it while the total is observed at least every second.
	rateStep = Window / 8
)

// Rate estimates the current speed of a growing total from samples of
// it: its growth over the last Window. A total that stops growing reads 0
// once a Window has passed, whereas an average since the start would fall
// slowly for ever. The zero value is ready to use; it is not safe for
// concurrent use.
type Rate struct {
	s    [rateSamples]sample
	n    int // samples held
	head int // index of the newest
}

type sample struct {
	t time.Time
	v int64
}

// Observe records that the total was v at now. Times must not go back.
func (r *Rate) Observe(now time.Time, v int64) {
	if r.n >= 2 && now.Sub(r.at(1).t) < rateStep {
		r.s[r.head] = sample{now, v} // too close to keep both: move the newest
		return
	}
	r.head = (r.head + 1) % rateSamples
	r.s[r.head] = sample{now, v}
	r.n = min(r.n+1, rateSamples)
}

// at returns the i-th newest sample (0: the newest).
func (r *Rate) at(i int) sample { return r.s[(r.head-i+rateSamples)%rateSamples] }

// PerSecond returns the growth per second over the Window before now,
// taking the total as unchanged since its last sample.
func (r *Rate) PerSecond(now time.Time) int64 {
	if r.n == 0 {
		return 0
	}
	last, base := r.at(0), r.at(r.n-1)
	from := now.Add(-Window)
	if !last.t.After(from) {
		return 0 // nothing grew within the window
	}
	for i := 1; i < r.n; i++ {
		if s := r.at(i); !s.t.After(from) {
			base = s
			break
		}
	}
	span := now.Sub(base.t)
	if span <= 0 || last.v <= base.v {
		return 0
	}
	return int64(float64(last.v-base.v) / span.Seconds())
}

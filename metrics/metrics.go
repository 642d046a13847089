// Package metrics is a small, dependency-free registry of counters and
// gauges written in the Prometheus text exposition format (version 0.0.4).
// Updates are single atomic operations, so instruments can sit on hot
// paths; a scrape reads them without stopping writers.
//
// NewNode registers the metrics a share node exports; the node holds the
// returned struct and bumps its fields where the events happen.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ContentType is the media type of the text format WriteTo produces.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

var (
	nameRE  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Registry holds metrics and writes them, in registration order. The zero
// value is not usable; call NewRegistry. It is safe for concurrent use.
type Registry struct {
	mu      sync.Mutex
	metrics []metric
	names   map[string]bool
}

// metric is one registered family.
type metric interface {
	desc() *desc
	// samples appends the family's sample lines, without HELP and TYPE.
	samples(b []byte) []byte
}

type desc struct {
	name, help, typ string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{names: make(map[string]bool)} }

// register adds m, panicking on a bad or duplicate name: metric names are
// fixed in the code, so a bad one is a programming error.
func (r *Registry) register(m metric) {
	d := m.desc()
	if !nameRE.MatchString(d.name) {
		panic(fmt.Sprintf("metrics: invalid metric name %q", d.name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[d.name] {
		panic(fmt.Sprintf("metrics: duplicate metric name %q", d.name))
	}
	r.names[d.name] = true
	r.metrics = append(r.metrics, m)
}

// WriteTo writes every metric in the Prometheus text format: a HELP and a
// TYPE line, then its samples.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	ms := slices.Clone(r.metrics)
	r.mu.Unlock()
	var b []byte
	for _, m := range ms {
		d := m.desc()
		b = append(b, "# HELP "...)
		b = append(b, d.name...)
		b = append(b, ' ')
		b = append(b, escapeHelp(d.help)...)
		b = append(b, "\n# TYPE "...)
		b = append(b, d.name...)
		b = append(b, ' ')
		b = append(b, d.typ...)
		b = append(b, '\n')
		b = m.samples(b)
	}
	n, err := w.Write(b)
	return int64(n), err
}

// ServeHTTP writes the metrics for a Prometheus scrape.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "no-store")
	if req.Method == http.MethodHead {
		return
	}
	bw := bufio.NewWriter(w)
	r.WriteTo(bw)
	bw.Flush()
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeHelp(s string) string { return helpEscaper.Replace(s) }

var labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)

// Counter is a value that only goes up.
type Counter struct {
	d *desc
	v atomic.Uint64
}

// NewCounter registers a counter. By convention its name ends in _total.
func (r *Registry) NewCounter(name, help string) *Counter {
	c := &Counter{d: &desc{name, help, "counter"}}
	r.register(c)
	return c
}

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the current count.
func (c *Counter) Value() uint64 { return c.v.Load() }

func (c *Counter) desc() *desc { return c.d }

func (c *Counter) samples(b []byte) []byte {
	return appendSample(b, c.d.name, "", c.v.Load())
}

func appendSample(b []byte, name, labels string, v uint64) []byte {
	b = append(b, name...)
	b = append(b, labels...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, v, 10)
	return append(b, '\n')
}

// Gauge is a value that goes up and down, or one computed at each scrape
// by a function set with SetFunc.
type Gauge struct {
	d  *desc
	v  atomic.Int64
	fn atomic.Pointer[func() int64]
}

// NewGauge registers a gauge.
func (r *Registry) NewGauge(name, help string) *Gauge {
	g := &Gauge{d: &desc{name, help, "gauge"}}
	r.register(g)
	return g
}

// NewGaugeFunc registers a gauge whose value is fn's result at each scrape.
// fn must be safe to call from any goroutine and should be cheap.
func (r *Registry) NewGaugeFunc(name, help string, fn func() int64) *Gauge {
	g := r.NewGauge(name, help)
	g.SetFunc(fn)
	return g
}

// Set sets the value.
func (g *Gauge) Set(v int64) { g.v.Store(v) }

// Add adds d, which may be negative.
func (g *Gauge) Add(d int64) { g.v.Add(d) }

// Inc adds one.
func (g *Gauge) Inc() { g.v.Add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.v.Add(-1) }

// SetFunc makes the gauge report fn's result instead of its stored value;
// nil goes back to the stored value.
func (g *Gauge) SetFunc(fn func() int64) {
	if fn == nil {
		g.fn.Store(nil)
		return
	}
	g.fn.Store(&fn)
}

// Value returns the current value.
func (g *Gauge) Value() int64 {
	if fn := g.fn.Load(); fn != nil {
		return (*fn)()
	}
	return g.v.Load()
}

func (g *Gauge) desc() *desc { return g.d }

func (g *Gauge) samples(b []byte) []byte {
	b = append(b, g.d.name...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, g.Value(), 10)
	return append(b, '\n')
}

// CounterVec is a family of counters that share a name and a fixed set of
// label names, one counter per combination of label values.
type CounterVec struct {
	d      *desc
	labels []string
	mu     sync.RWMutex
	m      map[string]*vecEntry // by the joined label values
}

type vecEntry struct {
	values []string
	text   string // `{a="x",b="y"}`
	c      Counter
}

// NewCounterVec registers a labelled counter with the given label names.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	if len(labels) == 0 {
		panic(fmt.Sprintf("metrics: counter vector %q without labels", name))
	}
	seen := make(map[string]bool)
	for _, l := range labels {
		if !labelRE.MatchString(l) || strings.HasPrefix(l, "__") || seen[l] {
			panic(fmt.Sprintf("metrics: %s: invalid or duplicate label name %q", name, l))
		}
		seen[l] = true
	}
	v := &CounterVec{d: &desc{name, help, "counter"}, labels: slices.Clone(labels), m: make(map[string]*vecEntry)}
	r.register(v)
	return v
}

// With returns the counter for the given label values, one per label name
// in order, creating it at zero on first use. It panics when the number of
// values is wrong. Callers on hot paths keep the returned counter.
func (v *CounterVec) With(values ...string) *Counter {
	if len(values) != len(v.labels) {
		panic(fmt.Sprintf("metrics: %s: %d label values for %d labels", v.d.name, len(values), len(v.labels)))
	}
	key := strings.Join(values, "\xff")
	v.mu.RLock()
	e, ok := v.m[key]
	v.mu.RUnlock()
	if ok {
		return &e.c
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e, ok := v.m[key]; ok {
		return &e.c
	}
	var sb strings.Builder
	sb.WriteByte('{')
	for i, l := range v.labels {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(l)
		sb.WriteString(`="`)
		sb.WriteString(labelEscaper.Replace(values[i]))
		sb.WriteByte('"')
	}
	sb.WriteByte('}')
	e = &vecEntry{values: slices.Clone(values), text: sb.String()}
	e.c.d = v.d
	v.m[key] = e
	return &e.c
}

func (v *CounterVec) desc() *desc { return v.d }

// samples writes the series sorted by label values, so output is stable.
func (v *CounterVec) samples(b []byte) []byte {
	v.mu.RLock()
	es := make([]*vecEntry, 0, len(v.m))
	for _, e := range v.m {
		es = append(es, e)
	}
	v.mu.RUnlock()
	slices.SortFunc(es, func(a, b *vecEntry) int { return slices.Compare(a.values, b.values) })
	for _, e := range es {
		b = appendSample(b, v.d.name, e.text, e.c.Value())
	}
	return b
}

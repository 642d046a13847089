package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func text(t *testing.T, r *Registry) string {
	t.Helper()
	var sb strings.Builder
	n, err := r.WriteTo(&sb)
	if err != nil || n != int64(sb.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d", n, err, sb.Len())
	}
	return sb.String()
}

func TestWriteTo(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounter("x_requests_total", "Requests.\nSecond line with \\ backslash.")
	g := r.NewGauge("x_temperature", "Temperature.")
	v := r.NewCounterVec("x_bytes_total", "Bytes.", "direction", "protocol")
	f := r.NewGaugeFunc("x_computed", "Computed.", func() int64 { return 42 })
	c.Inc()
	c.Add(2)
	g.Set(10)
	g.Add(-15)
	v.With("out", "kad").Add(7)
	v.With("in", "blocks").Add(100)
	v.With("in", `we"ird\`+"\n").Inc()
	v.With("in", "blocks").Add(1)
	want := `# HELP x_requests_total Requests.\nSecond line with \\ backslash.
# TYPE x_requests_total counter
x_requests_total 3
# HELP x_temperature Temperature.
# TYPE x_temperature gauge
x_temperature -5
# HELP x_bytes_total Bytes.
# TYPE x_bytes_total counter
x_bytes_total{direction="in",protocol="blocks"} 101
x_bytes_total{direction="in",protocol="we\"ird\\\n"} 1
x_bytes_total{direction="out",protocol="kad"} 7
# HELP x_computed Computed.
# TYPE x_computed gauge
x_computed 42
`
	if got := text(t, r); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	f.SetFunc(nil)
	f.Set(3)
	if f.Value() != 3 {
		t.Errorf("gauge after SetFunc(nil) = %d", f.Value())
	}
}

func TestNode(t *testing.T) {
	n := NewNode()
	n.BytesIn("blocks").Add(1000)
	n.BytesOut("blocks").Add(10)
	n.BlocksServed.Inc()
	n.BlocksFetched.Add(4)
	n.Peers.Set(3)
	n.DHTRequests.With("FIND_NODE").Add(2)
	n.AutoNAT.With("client", "reachable").Add(3)
	n.HolePunch.With("initiator", "success").Inc()
	n.HolePunchMillis.Set(42)
	n.StoreBytes.SetFunc(func() int64 { return 1 << 30 })
	n.StoreBlocks.Set(1024)
	n.GCRuns.Inc()
	n.GCFreedBytes.Add(512)
	n.GCFreedBlocks.Add(2)
	n.Pubsub["delivered"].Set(5)
	want := `# HELP share_bytes_total Stream payload bytes by direction and protocol.
# TYPE share_bytes_total counter
share_bytes_total{direction="in",protocol="blocks"} 1000
share_bytes_total{direction="out",protocol="blocks"} 10
# HELP share_blocks_served_total Blocks sent to peers.
# TYPE share_blocks_served_total counter
share_blocks_served_total 1
# HELP share_blocks_fetched_total Blocks received from peers and verified.
# TYPE share_blocks_fetched_total counter
share_blocks_fetched_total 4
# HELP share_peers_connected Connected peers.
# TYPE share_peers_connected gauge
share_peers_connected 3
# HELP share_dht_requests_total DHT requests sent, by message type.
# TYPE share_dht_requests_total counter
share_dht_requests_total{type="FIND_NODE"} 2
# HELP share_autonat_total AutoNAT v2 outcomes, by role (client or server) and outcome.
# TYPE share_autonat_total counter
share_autonat_total{role="client",outcome="reachable"} 3
# HELP share_holepunch_total Hole punches (DCUtR) by role (initiator or receiver) and outcome.
# TYPE share_holepunch_total counter
share_holepunch_total{role="initiator",outcome="success"} 1
# HELP share_holepunch_last_ms Milliseconds from the relayed connection to the direct one, last successful hole punch.
# TYPE share_holepunch_last_ms gauge
share_holepunch_last_ms 42
# HELP share_store_bytes Bytes of blocks in the blockstore.
# TYPE share_store_bytes gauge
share_store_bytes 1073741824
# HELP share_store_blocks Blocks in the blockstore.
# TYPE share_store_blocks gauge
share_store_blocks 1024
# HELP share_gc_runs_total Completed garbage collections.
# TYPE share_gc_runs_total counter
share_gc_runs_total 1
# HELP share_gc_freed_bytes_total Bytes of blocks removed by garbage collection.
# TYPE share_gc_freed_bytes_total counter
share_gc_freed_bytes_total 512
# HELP share_gc_freed_blocks_total Blocks removed by garbage collection.
# TYPE share_gc_freed_blocks_total counter
share_gc_freed_blocks_total 2
# HELP share_pubsub_published_messages Gossipsub messages since the daemon started: published.
# TYPE share_pubsub_published_messages gauge
share_pubsub_published_messages 0
# HELP share_pubsub_delivered_messages Gossipsub messages since the daemon started: delivered.
# TYPE share_pubsub_delivered_messages gauge
share_pubsub_delivered_messages 5
# HELP share_pubsub_duplicate_messages Gossipsub messages since the daemon started: duplicate.
# TYPE share_pubsub_duplicate_messages gauge
share_pubsub_duplicate_messages 0
# HELP share_pubsub_invalid_messages Gossipsub messages since the daemon started: invalid.
# TYPE share_pubsub_invalid_messages gauge
share_pubsub_invalid_messages 0
# HELP share_pubsub_ignored_messages Gossipsub messages since the daemon started: ignored.
# TYPE share_pubsub_ignored_messages gauge
share_pubsub_ignored_messages 0
# HELP share_pubsub_queue_drop_messages Gossipsub messages since the daemon started: queue drop.
# TYPE share_pubsub_queue_drop_messages gauge
share_pubsub_queue_drop_messages 0
# HELP share_pubsub_subscription_drop_messages Gossipsub messages since the daemon started: subscription drop.
# TYPE share_pubsub_subscription_drop_messages gauge
share_pubsub_subscription_drop_messages 0
# HELP share_pubsub_publish_wait_messages Gossipsub messages since the daemon started: publish wait.
# TYPE share_pubsub_publish_wait_messages gauge
share_pubsub_publish_wait_messages 0
`
	if got := text(t, n.Registry); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestInvalidNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(r *Registry)
	}{
		{"empty", func(r *Registry) { r.NewCounter("", "h") }},
		{"digit first", func(r *Registry) { r.NewCounter("1x", "h") }},
		{"dash", func(r *Registry) { r.NewGauge("a-b", "h") }},
		{"space", func(r *Registry) { r.NewGauge("a b", "h") }},
		{"duplicate", func(r *Registry) { r.NewGauge("a", "h"); r.NewCounter("a", "h") }},
		{"no labels", func(r *Registry) { r.NewCounterVec("a", "h") }},
		{"bad label", func(r *Registry) { r.NewCounterVec("a", "h", "x:y") }},
		{"reserved label", func(r *Registry) { r.NewCounterVec("a", "h", "__name") }},
		{"duplicate label", func(r *Registry) { r.NewCounterVec("a", "h", "x", "x") }},
		{"label count", func(r *Registry) { r.NewCounterVec("a", "h", "x", "y").With("1") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f(NewRegistry())
		})
	}
}

func TestConcurrent(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounter("c_total", "c")
	v := r.NewCounterVec("v_total", "v", "k")
	g := r.NewGauge("g", "g")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 1000 {
				c.Inc()
				v.With(string(rune('a' + (i+j)%4))).Inc()
				g.Inc()
				if j%100 == 0 {
					r.WriteTo(new(strings.Builder))
				}
			}
		}()
	}
	wg.Wait()
	var sum uint64
	for _, k := range []string{"a", "b", "c", "d"} {
		sum += v.With(k).Value()
	}
	if c.Value() != 8000 || sum != 8000 || g.Value() != 8000 {
		t.Errorf("counter %d, vector sum %d, gauge %d; want 8000", c.Value(), sum, g.Value())
	}
}

func TestServeHTTP(t *testing.T) {
	r := NewRegistry()
	r.NewCounter("a_total", "A.").Add(5)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != ContentType {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if want := "# HELP a_total A.\n# TYPE a_total counter\na_total 5\n"; rec.Body.String() != want {
		t.Errorf("body %q, want %q", rec.Body.String(), want)
	}
	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("POST", "/metrics", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

func BenchmarkCounterVecWith(b *testing.B) {
	v := NewRegistry().NewCounterVec("v_total", "v", "direction", "protocol")
	for b.Loop() {
		v.With("in", "blocks").Inc()
	}
}

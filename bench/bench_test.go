package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// memTarget is an in-memory device that fails every failEvery-th operation.
type memTarget struct {
	mu        sync.Mutex
	data      []byte
	n         int
	failEvery int
	reads     int
	writes    int
}

func (m *memTarget) op(write bool, p []byte, off uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	if m.failEvery > 0 && m.n%m.failEvery == 0 {
		return errors.New("injected")
	}
	if off%4096 != 0 || off+uint64(len(p)) > uint64(len(m.data)) {
		return errors.New("out of range or unaligned")
	}
	if write {
		m.writes++
		copy(m.data[off:], p)
	} else {
		m.reads++
		copy(p, m.data[off:])
	}
	return nil
}

func (m *memTarget) ReadAt(_ context.Context, p []byte, off uint64) error  { return m.op(false, p, off) }
func (m *memTarget) WriteAt(_ context.Context, p []byte, off uint64) error { return m.op(true, p, off) }

func TestRunCountsEveryOperation(t *testing.T) {
	for _, w := range []string{RandWrite, RandRead, Mixed} {
		m := &memTarget{data: make([]byte, 1<<20), failEvery: 7}
		c := Config{Workload: w, BS: 8192, QD: 4, Duration: 200 * time.Millisecond, Span: 1 << 20, ReadPct: 50, Seed: 1}
		r, err := Run(context.Background(), c, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Ops == 0 || r.Ops+r.Errors != uint64(m.n) || r.Reads+r.Writes != uint64(m.n) {
			t.Fatalf("%s: result %+v for %d target calls", w, r, m.n)
		}
		if r.Errors != uint64(m.n/7) || r.FirstError != "injected" {
			t.Fatalf("%s: %d errors (%q), want %d", w, r.Errors, r.FirstError, m.n/7)
		}
		switch w {
		case RandWrite:
			if m.reads != 0 {
				t.Fatalf("randwrite read %d times", m.reads)
			}
		case RandRead:
			if m.writes != 0 {
				t.Fatalf("randread wrote %d times", m.writes)
			}
		case Mixed:
			if m.reads == 0 || m.writes == 0 {
				t.Fatalf("mixed: %d reads, %d writes", m.reads, m.writes)
			}
		}
		if r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.Max || r.OpsPerSecond <= 0 {
			t.Fatalf("%s: quantiles %+v", w, r)
		}
	}
}

func TestPrefillWritesEverySlot(t *testing.T) {
	m := &memTarget{data: make([]byte, 1<<20)}
	c := Config{Workload: RandRead, BS: 4096, QD: 3, Duration: time.Second, Span: 1 << 20, Seed: 2}
	if err := Prefill(context.Background(), m, c, nil); err != nil {
		t.Fatal(err)
	}
	if m.writes != 256 {
		t.Fatalf("prefill wrote %d slots, want 256", m.writes)
	}
	m.failEvery = 10
	if err := Prefill(context.Background(), m, c, nil); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("prefill with failures: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Workload: RandWrite, BS: 4096, QD: 1, Duration: time.Second, Span: 4096}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Workload = "seqwrite" },
		func(c *Config) { c.BS = 512 },
		func(c *Config) { c.BS = 2 << 20 },
		func(c *Config) { c.QD = 0 },
		func(c *Config) { c.QD = 5000 },
		func(c *Config) { c.Duration = 0 },
		func(c *Config) { c.Span = 100 },
		func(c *Config) { c.ReadPct = 101 },
	} {
		c := good
		bad(&c)
		if c.Validate() == nil {
			t.Fatalf("%+v validated", c)
		}
	}
}

// The etcd target against a fake JSON gateway: what is put is got back, absent keys read
// as zeros, and gateway errors are errors.
func TestEtcdTarget(t *testing.T) {
	var mu sync.Mutex
	kv := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req map[string]string
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/v3/kv/put":
			if len(kv) > 100 {
				http.Error(w, `{"error":"etcdserver: mvcc: database space exceeded"}`, 500)
				return
			}
			kv[req["key"]] = req["value"]
			w.Write([]byte(`{"header":{}}`))
		case "/v3/kv/range":
			if v, ok := kv[req["key"]]; ok {
				json.NewEncoder(w).Encode(map[string]any{"kvs": []map[string]string{{"key": req["key"], "value": v}}})
				return
			}
			w.Write([]byte(`{"header":{}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	e, err := NewEtcd([]string{strings.TrimPrefix(srv.URL, "http://")}, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := []byte(strings.Repeat("x", 4096))
	if err := e.WriteAt(ctx, p, 8192); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4096)
	if err := e.ReadAt(ctx, got, 8192); err != nil || string(got) != string(p) {
		t.Fatalf("read back: %v", err)
	}
	got[0] = 1
	if err := e.ReadAt(ctx, got, 0); err != nil || got[0] != 0 {
		t.Fatalf("absent key: %v %d", err, got[0])
	}
	if _, ok := kv[base64.StdEncoding.EncodeToString([]byte("cairn-bench/8192"))]; !ok {
		t.Fatalf("keys: %v", kv)
	}
	for i := range 101 {
		kv[string(rune(i))+"k"] = ""
	}
	if err := e.WriteAt(ctx, p, 0); err == nil || !strings.Contains(err.Error(), "space exceeded") {
		t.Fatalf("gateway error: %v", err)
	}
}

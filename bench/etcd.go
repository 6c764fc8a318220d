package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Etcd is a Target over an etcd cluster's v3 JSON gateway (/v3/kv/put, /v3/kv/range):
// an operation at offset off puts or gets key "cairn-bench/<off>" with a BS-byte value.
// Puts are durable on a quorum (etcd fsyncs its WAL); ranges are linearizable (etcd's
// default), the same guarantees Cairn gives. The JSON gateway costs etcd some CPU that
// its gRPC clients do not pay; BENCHMARKS.md says so beside the figures.
type Etcd struct {
	endpoints []string
	next      atomic.Uint64
	hc        *http.Client
}

// NewEtcd returns a target for the given client URLs (http://host:port), spreading
// requests over them round-robin; qd sizes the connection pool.
func NewEtcd(endpoints []string, qd int) (*Etcd, error) {
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("etcd: no endpoints")
	}
	for i, e := range endpoints {
		if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
			endpoints[i] = "http://" + e
		}
	}
	tr := &http.Transport{MaxIdleConns: 2 * qd, MaxIdleConnsPerHost: qd, IdleConnTimeout: time.Minute}
	return &Etcd{endpoints: endpoints, hc: &http.Client{Transport: tr}}, nil
}

func (e *Etcd) key(off uint64) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "cairn-bench/%d", off))
}

func (e *Etcd) call(ctx context.Context, path string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ep := e.endpoints[e.next.Add(1)%uint64(len(e.endpoints))]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.hc.Do(req)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("etcd %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s: %.200s", path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("etcd %s: %w", path, err)
		}
	}
	return nil
}

// WriteAt puts p under the offset's key.
func (e *Etcd) WriteAt(ctx context.Context, p []byte, off uint64) error {
	return e.call(ctx, "/v3/kv/put", map[string]string{"key": e.key(off), "value": base64.StdEncoding.EncodeToString(p)}, nil)
}

// ReadAt gets the offset's key into p (zeros when it was never written).
func (e *Etcd) ReadAt(ctx context.Context, p []byte, off uint64) error {
	var out struct {
		Kvs []struct {
			Value string `json:"value"`
		} `json:"kvs"`
	}
	if err := e.call(ctx, "/v3/kv/range", map[string]string{"key": e.key(off)}, &out); err != nil {
		return err
	}
	clear(p)
	if len(out.Kvs) == 1 {
		v, err := base64.StdEncoding.DecodeString(out.Kvs[0].Value)
		if err != nil {
			return fmt.Errorf("etcd range: %w", err)
		}
		copy(p, v)
	}
	return nil
}

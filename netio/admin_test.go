package netio

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func adminCall(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The admin API on a real three-node cluster: create, show, change QoS, delete; every
// bad input is a 4xx with a message; /healthz, /v1/status and /metrics answer.
func TestAdminAPI(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := NewClient(ctx, ClientConfig{ID: 1003, Session: uint64(time.Now().UnixNano()), Authorities: tc.auth, Peers: tc.peers})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	srv := httptest.NewServer(NewAdmin(tc.runners[0], cl))
	defer srv.Close()

	var code int
	var body string
	for range 50 { // the cell elects its first leader
		if code, body = adminCall(t, srv, "POST", "/v1/volumes", `{"name":"db","size":"64M","rf":2,"qos":{"IOPS":300,"BurstIOPS":3000,"BurstCredits":1000}}`); code != http.StatusServiceUnavailable {
			break
		}
	}
	var v VolumeJSON
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &v) != nil || v.SizeMiB != 64 || v.RF != 2 || v.QoS.IOPS != 300 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, body = adminCall(t, srv, "POST", "/v1/volumes", `{"name":"db","size":"64M"}`); code != http.StatusConflict {
		t.Fatalf("create twice: %d %s", code, body)
	}
	if code, body = adminCall(t, srv, "GET", "/v1/volumes/db", ""); code != http.StatusOK || !strings.Contains(body, `"size_mib":64`) {
		t.Fatalf("show: %d %s", code, body)
	}
	if code, body = adminCall(t, srv, "PUT", "/v1/volumes/db/qos", `{"IOPS":500}`); code != http.StatusOK || !strings.Contains(body, `"IOPS":500`) {
		t.Fatalf("set QoS: %d %s", code, body)
	}
	bad := []struct{ method, path, body, want string }{
		{"POST", "/v1/volumes", `{"name":"x","size":"1000"}`, "multiple of 4 KiB"},
		{"POST", "/v1/volumes", `{"name":"x","size":"1G","rf":9}`, "rf 9"},
		{"POST", "/v1/volumes", `{"name":"bad name","size":"1G"}`, "volume name"},
		{"POST", "/v1/volumes", `{"name":"x","size":"1G","colour":"red"}`, "unknown field"},
		{"POST", "/v1/volumes", `{"name":"x","size":"1G","rf":3,"qos":{"IOPS":-5}}`, "IOPS"},
		{"PUT", "/v1/volumes/db/qos", `{"IOPS":100,"BurstIOPS":50}`, "qos"},
		{"GET", "/v1/volumes/nosuch", ``, "no volume"},
	}
	for _, b := range bad {
		code, body := adminCall(t, srv, b.method, b.path, b.body)
		if code < 400 || code >= 500 || !strings.Contains(strings.ToLower(body), strings.ToLower(b.want)) {
			t.Errorf("%s %s %s: %d %s, want a 4xx mentioning %q", b.method, b.path, b.body, code, body, b.want)
		}
	}
	if code, body = adminCall(t, srv, "GET", "/v1/volumes/db", ""); !strings.Contains(body, `"IOPS":500`) {
		t.Fatalf("a refused change was half-applied: %d %s", code, body)
	}
	if code, body = adminCall(t, srv, "GET", "/healthz", ""); code != http.StatusOK {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, body = adminCall(t, srv, "GET", "/v1/status", ""); code != http.StatusOK || !strings.Contains(body, `"node":1`) {
		t.Fatalf("status: %d %s", code, body)
	}
	code, body = adminCall(t, srv, "GET", "/metrics", "")
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader([]byte(body)))
	if code != http.StatusOK || err != nil || fams["cairn_node_global_rate_ops"] == nil {
		t.Fatalf("metrics: %d %v", code, err)
	}
	if code, body = adminCall(t, srv, "DELETE", "/v1/volumes/db", ""); code != http.StatusOK {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, _ = adminCall(t, srv, "GET", "/v1/volumes/db", ""); code != http.StatusNotFound {
		t.Fatalf("after delete: %d", code)
	}
}

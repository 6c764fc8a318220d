package netio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/core"

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
	cl := tc.client(t, ctx, 1003, 0)
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
	if code, body = adminCall(t, srv, "GET", "/v1/volumes/db", ""); code != http.StatusOK || !strings.Contains(body, `"size_mib":64`) ||
		!strings.Contains(body, `"name":"db"`) {
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
		{"DELETE", "/v1/volumes/nosuch", ``, "no volume"},
		{"PUT", "/v1/volumes/nosuch/qos", `{"IOPS":100}`, "no volume"},
		{"GET", "/v1/volumes/bad%20name", ``, "volume name"},
		{"POST", "/v1/volumes", `{"name":"` + strings.Repeat("x", 65) + `","size":"1G"}`, "longer than 64"},
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

func decodeJSON[T any](t *testing.T, code int, body string, want int) T {
	t.Helper()
	var v T
	if code != want {
		t.Fatalf("HTTP %d (want %d): %s", code, want, body)
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("bad JSON %q: %v", body, err)
	}
	return v
}

// Listing, name collisions, deletion at the hosts and per-volume figures, on a real
// three-node cluster: GET /v1/volumes follows the authority's pages (more volumes than one
// page holds); a second name that hashes to an existing volume's id is refused as a
// collision and never reaches that volume; DELETE stops the volume's primary and every
// host forgets it; GET /v1/stats shows the primary's latency quantiles.
func TestAdminVolumesListDeleteStats(t *testing.T) {
	tc := newTestCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cl := tc.client(t, ctx, 1004, 5*time.Second)
	var srvs []*httptest.Server
	for _, r := range tc.runners {
		s := httptest.NewServer(NewAdmin(r, cl))
		defer s.Close()
		srvs = append(srvs, s)
	}
	srv := srvs[0]
	var code int
	var body string
	for range 50 { // the cell elects its first leader
		if code, body = adminCall(t, srv, "POST", "/v1/volumes", `{"name":"db","size":"16M","rf":3}`); code != http.StatusServiceUnavailable {
			break
		}
	}
	db := decodeJSON[VolumeJSON](t, code, body, http.StatusCreated)

	// More numbered volumes than one list page holds (created straight through the cell).
	const numbered = core.MaxListVolumes + 20
	var wg sync.WaitGroup
	errs := make(chan error, numbered)
	sem := make(chan struct{}, 32)
	for id := 1; id <= numbered; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			rep, err := cl.Admin(ctx, core.AuthRequest{Op: core.OpCreateVolume, Vol: core.VolumeID(id), Blocks: 1, RF: 1})
			if err == nil && rep.Status != core.StatusOK {
				err = fmt.Errorf("volume %d: %v", id, rep.Status)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	code, body = adminCall(t, srv, "GET", "/v1/volumes", "")
	list := decodeJSON[VolumesJSON](t, code, body, http.StatusOK)
	if len(list.Volumes) != numbered+1 {
		t.Fatalf("listed %d volumes, want %d", len(list.Volumes), numbered+1)
	}
	for i, v := range list.Volumes[:numbered] {
		if v.ID != uint32(i+1) || v.Name != fmt.Sprint(i+1) || v.RF != 1 {
			t.Fatalf("entry %d: %+v", i, v)
		}
	}
	if last := list.Volumes[numbered]; last.Name != "db" || last.ID != db.ID || last.RF != 3 {
		t.Fatalf("the named volume is listed as %+v", last)
	}

	// Two names with the same id: the second is a collision, and never reaches the first.
	a, b := "c268724", "c698200"
	if ia, _ := VolumeIDOf(a); ia != mustID(t, b) {
		t.Fatalf("%q and %q no longer hash alike: pick another pair", a, b)
	}
	if code, body = adminCall(t, srv, "POST", "/v1/volumes", `{"name":"`+a+`","size":"4M","rf":1}`); code != http.StatusCreated {
		t.Fatalf("create %s: %d %s", a, code, body)
	}
	// Its primary renews the first epoch before it serves (DESIGN 2.4): epoch 2 from then on.
	for i := 0; ; i++ {
		if code, body = adminCall(t, srv, "GET", "/v1/volumes/"+a, ""); code == http.StatusOK && strings.Contains(body, `"epoch":2,`) {
			break
		}
		if i == 100 {
			t.Fatalf("%s not renewed: %d %s", a, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body = adminCall(t, srv, "POST", "/v1/volumes", `{"name":"`+b+`","size":"4M","rf":1}`); code != http.StatusConflict ||
		!strings.Contains(body, `collides with volume \"`+a+`\"`) {
		t.Fatalf("create a colliding name: %d %s", code, body)
	}
	if code, body = adminCall(t, srv, "POST", "/v1/volumes", `{"name":"`+a+`","size":"4M","rf":1}`); code != http.StatusConflict ||
		!strings.Contains(body, "already exists") {
		t.Fatalf("create %s twice: %d %s", a, code, body)
	}
	for _, c := range []struct{ method, path, body string }{{"GET", "/v1/volumes/" + b, ""}, {"DELETE", "/v1/volumes/" + b, ""},
		{"PUT", "/v1/volumes/" + b + "/qos", `{"IOPS":100}`}} {
		if code, body = adminCall(t, srv, c.method, c.path, c.body); code != http.StatusNotFound {
			t.Fatalf("%s %s: %d %s, want 404", c.method, c.path, code, body)
		}
	}
	if code, body = adminCall(t, srv, "GET", "/v1/volumes/"+a, ""); code != http.StatusOK || !strings.Contains(body, `"epoch":2,`) {
		t.Fatalf("%s after the colliding requests: %d %s", a, code, body)
	}

	// Traffic on db, then its primary's figures.
	data := bytes.Repeat([]byte{7}, core.BlockSize)
	for i := range 20 {
		if err := cl.Write(ctx, core.VolumeID(db.ID), uint64(i), data); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if _, err := cl.Read(ctx, core.VolumeID(db.ID), 0, 1); err != nil {
		t.Fatalf("read: %v", err)
	}
	code, body = adminCall(t, srvs[db.Primary-1], "GET", "/v1/stats", "")
	st := decodeJSON[StatsJSON](t, code, body, http.StatusOK)
	var vs *VolumeStatsJSON
	for i := range st.Volumes {
		if st.Volumes[i].ID == db.ID {
			vs = &st.Volumes[i]
		}
	}
	if st.Node != db.Primary || vs == nil || !vs.Primary || vs.Admitted < 21 || len(vs.Ops) != 3 || vs.Ops[1].Op != "write" ||
		vs.Ops[1].Count < 20 || vs.Ops[1].P50 <= 0 || vs.Ops[1].P999 < vs.Ops[1].P50 || vs.Ops[0].Count < 1 || st.GlobalRate <= 0 {
		t.Fatalf("stats of the primary: %s", body)
	}

	// Delete db: every host forgets it, and a write fails with not-found (no retrying).
	if code, body = adminCall(t, srv, "DELETE", "/v1/volumes/db", ""); code != http.StatusOK {
		t.Fatalf("delete: %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, r := range tc.runners {
		for {
			var hosts bool
			if err := r.Do(ctx, func(n *core.Node) { hosts = n.Hosts(core.VolumeID(db.ID)) || !n.Deleted(core.VolumeID(db.ID)) }); err != nil {
				t.Fatal(err)
			}
			if !hosts {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a host still holds the deleted volume after 10 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	start := time.Now()
	err := cl.Write(ctx, core.VolumeID(db.ID), 0, data)
	if err == nil || errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "not-found") || time.Since(start) > 3*time.Second {
		t.Fatalf("a write after the delete: %v after %v; want not-found at once", err, time.Since(start))
	}
	if code, body = adminCall(t, srv, "DELETE", "/v1/volumes/db", ""); code != http.StatusNotFound {
		t.Fatalf("delete twice: %d %s", code, body)
	}
	code, body = adminCall(t, srv, "GET", "/v1/volumes", "")
	if list = decodeJSON[VolumesJSON](t, code, body, http.StatusOK); len(list.Volumes) != numbered+1 { // the numbered ones and a
		t.Fatalf("after the delete %d volumes are listed, want %d", len(list.Volumes), numbered+1)
	}
}

func mustID(t *testing.T, s string) core.VolumeID {
	t.Helper()
	id, err := VolumeIDOf(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

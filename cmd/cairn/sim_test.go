package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestSimJSONContract: the fields tools and CI depend on (spec section 9).
func TestSimJSONContract(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"sim", "--seed", "3", "--json", "--failures", ""}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lastLine(out.String())), &m); err != nil {
		t.Fatalf("last line is not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"seed", "trace_hash", "result", "violations", "sim_seconds", "wall_seconds", "events", "ops", "failovers", "unnecessary_failovers"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing %q in %v", k, m)
		}
	}
	if m["result"] != "ok" || m["seed"].(float64) != 3 {
		t.Errorf("unexpected result %v", m)
	}
	vols, _ := m["volumes"].([]any)
	if len(vols) == 0 {
		t.Fatalf("no volumes array in %v", m)
	}
	for _, v := range vols {
		for _, k := range []string{"id", "provisioned_iops", "admitted_iops", "throttled", "busy", "write_p50_us", "write_p99_us", "read_p99_us"} {
			if _, ok := v.(map[string]any)[k]; !ok {
				t.Errorf("volume entry missing %q: %v", k, v)
			}
		}
	}

	out.Reset()
	if code := run([]string{"sim", "--seeds", "2", "--from", "10", "--json", "--failures", ""}, &out, &errb); code != 0 {
		t.Fatalf("campaign exit %d: %s", code, out.String())
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(lastLine(out.String())), &s); err != nil {
		t.Fatalf("campaign last line is not JSON: %v", err)
	}
	for _, k := range []string{"seeds", "failed", "seeds_per_second", "sim_seconds", "wall_seconds"} {
		if _, ok := s[k]; !ok {
			t.Errorf("campaign summary missing %q", k)
		}
	}
	if s["seeds"].(float64) != 2 || len(s["failed"].([]any)) != 0 {
		t.Errorf("campaign summary %v", s)
	}
}

func TestSimBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"sim"},
		{"sim", "--seed", "1", "--seeds", "5"},
		{"sim", "--seeds", "5", "--trace"},
		{"sim", "--seed", "1", "--duration", "10ms"},
		{"sim", "--seed", "1", "--scenario", "nope"},
		{"sim", "--seed", "x"},
		{"sim", "--seed", "1", "extra"},
		{"frobnicate"},
		{},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if errb.Len() == 0 {
			t.Errorf("%v: no message on stderr", args)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"sim", "--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "--seeds") {
		t.Errorf("--help: exit %d, output %q", code, errb.String())
	}
}

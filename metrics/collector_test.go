package metrics

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/core"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// families is every metric family the collector exports, with its type.
var families = map[string]dto.MetricType{
	"cairn_volume_latency_seconds":          dto.MetricType_HISTOGRAM,
	"cairn_volume_latency_quantile_seconds": dto.MetricType_SUMMARY,
	"cairn_volume_admitted_total":           dto.MetricType_COUNTER,
	"cairn_volume_lent_total":               dto.MetricType_COUNTER,
	"cairn_volume_throttled_total":          dto.MetricType_COUNTER,
	"cairn_volume_busy_total":               dto.MetricType_COUNTER,
	"cairn_volume_queued":                   dto.MetricType_GAUGE,
	"cairn_volume_burst_credits":            dto.MetricType_GAUGE,
	"cairn_volume_provisioned_iops":         dto.MetricType_GAUGE,
	"cairn_volume_burst_iops":               dto.MetricType_GAUGE,
	"cairn_volume_primary":                  dto.MetricType_GAUGE,
	"cairn_volume_in_sync_replicas":         dto.MetricType_GAUGE,
	"cairn_volume_under_replicated":         dto.MetricType_GAUGE,
	"cairn_volume_rebuilding_replicas":      dto.MetricType_GAUGE,
	"cairn_node_remirror_bytes_total":       dto.MetricType_COUNTER,
	"cairn_node_copy_throttled_total":       dto.MetricType_COUNTER,
	"cairn_node_global_rate_ops":            dto.MetricType_GAUGE,
	"cairn_node_global_tokens":              dto.MetricType_GAUGE,
	"cairn_node_disk_latency_seconds":       dto.MetricType_GAUGE,
	"cairn_node_storage_queue":              dto.MetricType_GAUGE,
}

func TestScrape(t *testing.T) {
	f := newFixture(t)
	c := f.collector()
	fams, body := serveAndParse(t, c)
	if _, again := serveAndParse(t, c); !bytes.Equal(body, again) {
		t.Errorf("two scrapes of one snapshot differ:\n%s\n---\n%s", body, again)
	}
	for name, typ := range families {
		mf, ok := fams[name]
		if !ok {
			t.Errorf("family %s missing", name)
			continue
		}
		if mf.GetType() != typ {
			t.Errorf("%s: type %v, want %v", name, mf.GetType(), typ)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s: no help", name)
		}
	}
	if len(fams) != len(families) {
		t.Errorf("%d families, want %d", len(fams), len(families))
	}
	if h := fams["cairn_volume_latency_quantile_seconds"].GetHelp(); !strings.Contains(h, "0.39%") {
		t.Errorf("summary help %q does not state the 0.39%% error", h)
	}
	t.Run("node", func(t *testing.T) { checkNode(t, fams, "7", 12345, -17, 0.0015, 9) })
	t.Run("volumes", func(t *testing.T) { f.checkVolumes(t, fams) })
	t.Run("histogram", func(t *testing.T) { f.checkHistograms(t, fams) })
	t.Run("summary", func(t *testing.T) { f.checkSummaries(t, fams) })
}

func TestPedanticRegistry(t *testing.T) {
	f := newFixture(t)
	c := f.collector()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("pedantic gather: %v", err)
	}
	// 4 node gauges and 2 counters, 9 per volume and 3 more for the one it is primary of, 2
	// (histogram, summary) per non-nil histogram: 4 of them.
	if got, want := testutil.CollectAndCount(c), 6+2*9+3+2*4; got != want {
		t.Errorf("CollectAndCount = %d, want %d", got, want)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestNoVolumes(t *testing.T) {
	c := NewCollector(func() core.NodeStats {
		return core.NodeStats{Self: 42, GlobalRate: 5000, GlobalTokens: 250, DiskLatency: 250_000, StorageQueue: 1}
	})
	fams, _ := serveAndParse(t, c)
	checkNode(t, fams, "42", 5000, 250, 0.00025, 1)
	for name := range fams {
		if strings.HasPrefix(name, "cairn_volume_") {
			t.Errorf("volume family %s exposed with no volumes", name)
		}
	}
	if len(fams) != 6 {
		t.Errorf("%d families, want the 4 node gauges and the re-mirror and copy-throttle counters", len(fams))
	}
}

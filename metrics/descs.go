package metrics

import (
	"fmt"

	"github.com/cairnstore/cairn/core/hist"
	"github.com/prometheus/client_golang/prometheus"
)

// Label names.
const (
	labelNode   = "node"
	labelVolume = "volume"
	labelOp     = "op"
)

// descs holds every descriptor the Collector emits.
type descs struct {
	latency, latencyQuantile *prometheus.Desc // labels node, volume, op

	admitted, lent, throttled, busy  *prometheus.Desc // labels node, volume
	queued, credits, iops, burstIOPS *prometheus.Desc
	primary                          *prometheus.Desc
	inSync, underReplicated          *prometheus.Desc // labels node, volume (from the primary)
	rebuilding                       *prometheus.Desc
	reMirrorBytes                    *prometheus.Desc // label node
	copyWaits                        *prometheus.Desc // label node

	globalRate, globalTokens, diskLatency, storageQueue *prometheus.Desc // label node
}

func newDescs() *descs {
	node := []string{labelNode}
	vol := []string{labelNode, labelVolume}
	op := []string{labelNode, labelVolume, labelOp}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("cairn_"+name, help, labels, nil)
	}
	return &descs{
		latency: d("volume_latency_seconds",
			"Time from a request's arrival at the volume's primary to its successful reply, "+
				"by operation. Counts are cumulative since the node started.", op),
		latencyQuantile: d("volume_latency_quantile_seconds",
			fmt.Sprintf("Quantiles of the time from a request's arrival at the volume's primary "+
				"to its successful reply, by operation, since the node started; each is within "+
				"%.2f%% of the exact value (half the latency histogram's relative bucket width).",
				100*defaultRelErr()/2), op),

		admitted: d("volume_admitted_total",
			"Requests admitted for the volume while this node was its primary.", vol),
		lent: d("volume_lent_total",
			"Admitted requests that were let through beyond the volume's limits because "+
				"the node had spare capacity.", vol),
		throttled: d("volume_throttled_total",
			"Requests that had to wait in the volume's queue because it was over its limits.", vol),
		busy: d("volume_busy_total",
			"Requests rejected as busy because the volume's queue was full.", vol),
		queued: d("volume_queued",
			"Requests waiting in the volume's queue now.", vol),
		credits: d("volume_burst_credits",
			"Burst credits the volume has left: requests it may still run above its "+
				"provisioned IOPS.", vol),
		iops: d("volume_provisioned_iops",
			"The volume's provisioned (baseline) operations per second; 0 means not throttled.", vol),
		burstIOPS: d("volume_burst_iops",
			"The most operations per second the volume may run while it has burst credits.", vol),
		primary: d("volume_primary",
			"1 if this node is the volume's primary now, 0 otherwise.", vol),
		inSync: d("volume_in_sync_replicas",
			"Replicas of the volume in its in-sync set, the primary included (reported by its primary).", vol),
		underReplicated: d("volume_under_replicated",
			"1 if fewer of the volume's replicas are in sync than its replication factor "+
				"(reported by its primary), 0 otherwise.", vol),
		rebuilding: d("volume_rebuilding_replicas",
			"Replicas of the volume being rebuilt onto a new disk (wiped or replaced), as its primary sees them.", vol),
		reMirrorBytes: d("node_remirror_bytes_total",
			"Block data this node sent, as a primary, to replicas being rebuilt onto a new disk.", node),
		copyWaits: d("node_copy_throttled_total",
			"Catch-up and re-mirror answers this node held back to stay within its copy rate (--remirror-mbps).", node),

		globalRate: d("node_global_rate_ops",
			"Operations per second the node admits across all volumes, adapted to its "+
				"storage latency.", node),
		globalTokens: d("node_global_tokens",
			"Operations the node may admit right now across all volumes; negative when "+
				"guaranteed admissions have run it into debt.", node),
		diskLatency: d("node_disk_latency_seconds",
			"The node's smoothed storage latency, which its admission rate adapts to.", node),
		storageQueue: d("node_storage_queue",
			"Storage operations in flight on the node now.", node),
	}
}

// all lists every descriptor, for Describe.
func (d *descs) all() []*prometheus.Desc {
	return []*prometheus.Desc{
		d.latency, d.latencyQuantile,
		d.admitted, d.lent, d.throttled, d.busy,
		d.queued, d.credits, d.iops, d.burstIOPS, d.primary,
		d.inSync, d.underReplicated, d.rebuilding,
		d.globalRate, d.globalTokens, d.diskLatency, d.storageQueue, d.reMirrorBytes, d.copyWaits,
	}
}

// defaultRelErr is the relative bucket width of Cairn's latency layout
// (hist.DefaultConfig), which the node's histograms use.
func defaultRelErr() float64 {
	h, err := hist.New(hist.DefaultConfig())
	if err != nil {
		panic(err) // DefaultConfig is valid
	}
	return h.RelErr()
}

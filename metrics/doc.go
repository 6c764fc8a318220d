// Package metrics exposes a Cairn node's QoS and latency figures to Prometheus.
//
// A Collector turns one core.NodeStats snapshot, taken afresh on every scrape, into
// constant metrics; Handler serves them in the Prometheus text exposition format. The
// collector keeps no state between scrapes: counters are the node's own cumulative
// counts, and latency histograms are the node's cumulative histograms.
//
// Metrics, all prefixed cairn_ and labelled node="<NodeStats.Self>"; per-volume
// metrics add volume="<VolumeID>", latency metrics add op="read|write|flush":
//
//	cairn_volume_latency_seconds           histogram: request latency at the primary
//	cairn_volume_latency_quantile_seconds  summary: p50, p90, p99, p99.9 of the same
//	cairn_volume_admitted_total            counter: requests admitted
//	cairn_volume_lent_total                counter: admitted at a discount (node headroom)
//	cairn_volume_throttled_total           counter: waited in the volume's queue first
//	cairn_volume_busy_total                counter: refused because the queue was full
//	cairn_volume_queued                    gauge: requests waiting now
//	cairn_volume_burst_credits             gauge: burst credits now
//	cairn_volume_provisioned_iops          gauge: provisioned IOPS (0: not throttled)
//	cairn_volume_burst_iops                gauge: burst IOPS limit
//	cairn_volume_primary                   gauge: 1 if this node is the primary, else 0
//	cairn_node_global_rate_ops             gauge: node-wide admission rate, ops/s
//	cairn_node_global_tokens               gauge: node-wide token bucket level
//	cairn_node_disk_latency_seconds        gauge: smoothed storage latency
//	cairn_node_storage_queue               gauge: storage operations in flight
//
// The latency histogram has fixed buckets ("le", seconds): 50µs, 100µs, 250µs, 500µs,
// 1ms, 2ms, 5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s and +Inf, filled
// from the node's fine-grained histogram (see latencyBuckets for the exact rule). The
// summary's quantiles are 0.5, 0.9, 0.99 and 0.999, each within half the node
// histogram's relative bucket width (0.39% for hist.DefaultConfig) of the exact value,
// and NaN while the histogram is empty. A volume with no histogram for an op (nil) gets
// neither latency series for that op.
package metrics

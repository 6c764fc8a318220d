#!/usr/bin/env bash
# scripts/bench.sh: Cairn side by side with what a user would pick instead, on this machine
# (issue 7). 4 KiB random writes and reads at QD 1 and QD 32 against:
#   - Cairn RF 2 and RF 3 through the client library (cairn bench);
#   - the same volumes through NBD with fio's nbd engine: served by the primary's own node
#     (cairn node --nbd: no extra process, no network hop to the primary) and by cairn
#     attach (a separate process that follows failovers);
#   - nbdkit's file plugin serving a local file through the same fio job, every write made
#     durable (the fua filter forces FUA, which the file plugin turns into fdatasync):
#     the no-replication baseline;
#   - a three-member etcd cluster (Debian's etcd-server) with 4 KiB puts and gets (cairn
#     bench's etcd target), a replicated, fsyncing peer.
# Everything runs on 127.0.0.1 with data under $BENCH_DIR (default /var/tmp). Results: a
# Markdown table on stdout and one JSON object per line in $BENCH_OUT (default
# bench-results.jsonl). Needs fio, nbdkit, etcd (apt-get install fio nbdkit etcd-server).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DUR=${BENCH_DURATION:-15}   # seconds per measurement
OUT=${BENCH_OUT:-bench-results.jsonl}
for t in fio nbdkit etcd python3; do
	command -v "$t" >/dev/null || { echo "bench: $t is not installed" >&2; exit 2; }
done
go build -o bin/cairn ./cmd/cairn
BIN=$PWD/bin/cairn
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/cairn-bench.XXXXXX")
pids=()
cleanup() {
	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
: >"$OUT"
printf '| system | path | workload | QD | ops/s | p50 µs | p99 µs | errors |\n|---|---|---|---|---|---|---|---|\n'

record() { # system path workload qd json
	python3 - "$@" <<'PY' | tee -a "$OUT" >/dev/null
import json, sys
system, path, workload, qd, raw = sys.argv[1:6]
r = json.loads(raw)
r.update(system=system, path=path, workload=workload, qd=int(qd))
print(json.dumps(r))
PY
	python3 - "$@" <<'PY'
import json, sys
system, path, workload, qd, raw = sys.argv[1:6]
r = json.loads(raw)
print(f"| {system} | {path} | {workload} | {qd} | {r['ops_per_second']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | {r['errors']} |")
PY
}

fio_json() { # uri rw qd -> a summary JSON like cairn bench's
	fio --name=b --ioengine=nbd --uri="$1" --rw="$2" --bs=4k --iodepth="$3" --size=256m \
		--time_based --runtime="$DUR" --ramp_time=2 --randrepeat=0 --output-format=json >"$WORK/fio.json" 2>"$WORK/fio.err" || true
	python3 - "$2" "$WORK/fio.json" <<'PY'
import json, sys
text = open(sys.argv[2]).read()
j = json.loads(text[text.index("{"):])["jobs"][0]  # the nbd engine logs a line first
d = j["read" if sys.argv[1] == "randread" else "write"]
p = d["clat_ns"]["percentile"]
print(json.dumps({"ops_per_second": d["iops"], "p50_us": p["50.000000"]/1e3, "p99_us": p["99.000000"]/1e3,
                  "errors": j["error"]}))
PY
}

# --- Cairn: three nodes in three zones --------------------------------------------------
PEERS=1=0@127.0.0.1:7301,2=1@127.0.0.1:7302,3=2@127.0.0.1:7303
ADMIN=http://127.0.0.1:8301
for i in 1 2 3; do
	"$BIN" node --id $i --peers $PEERS --admin 127.0.0.1:830$i --nbd 127.0.0.1:1095$i --data-dir "$WORK/n$i" --log-level warn 2>>"$WORK/n$i.log" &
	pids+=($!)
done
for _ in $(seq 100); do curl -sf $ADMIN/healthz >/dev/null 2>&1 && break; sleep 0.1; done
for rf in 2 3; do
	for _ in $(seq 50); do
		curl -sf -X POST $ADMIN/v1/volumes -d "{\"name\":\"rf$rf\",\"size\":\"1G\",\"rf\":$rf}" >/dev/null && break
		sleep 0.2
	done
done
for rf in 2 3; do
	"$BIN" bench --target $PEERS --volume rf$rf --span 256M --qd 32 --duration 1s --prefill >/dev/null 2>&1
	for wl in randwrite randread; do
		for qd in 1 32; do
			j=$("$BIN" bench --target $PEERS --volume rf$rf --span 256M --workload $wl --qd $qd --duration ${DUR}s --json 2>/dev/null | tail -1 || true)
			record "Cairn RF $rf" "client library" $wl $qd "$j"
		done
	done
	primary=$(curl -sf $ADMIN/v1/volumes/rf$rf | python3 -c 'import json, sys; print(json.load(sys.stdin)["primary"])')
	for wl in randwrite randread; do
		for qd in 1 32; do
			record "Cairn RF $rf" "NBD from the primary's node (fio)" $wl $qd "$(fio_json nbd://127.0.0.1:1095$primary/rf$rf $wl $qd)"
		done
	done
	"$BIN" attach rf$rf --peers $PEERS --nbd 127.0.0.1:1090$rf 2>>"$WORK/attach$rf.log" &
	pids+=($!)
	for _ in $(seq 100); do nbdinfo --size nbd://127.0.0.1:1090$rf/rf$rf >/dev/null 2>&1 && break; sleep 0.1; done
	for wl in randwrite randread; do
		for qd in 1 32; do
			record "Cairn RF $rf" "NBD via cairn attach (fio)" $wl $qd "$(fio_json nbd://127.0.0.1:1090$rf/rf$rf $wl $qd)"
		done
	done
done

# --- nbdkit file plugin, every write durable --------------------------------------------
truncate -s 1G "$WORK/nbdkit.img"
nbdkit -f -i 127.0.0.1 -p 10909 --filter=fua file "$WORK/nbdkit.img" fuamode=force &
pids+=($!)
for _ in $(seq 100); do nbdinfo --size nbd://127.0.0.1:10909 >/dev/null 2>&1 && break; sleep 0.1; done
fio --name=fill --ioengine=nbd --uri=nbd://127.0.0.1:10909 --rw=write --bs=1m --size=256m --output-format=terse >/dev/null
for wl in randwrite randread; do
	for qd in 1 32; do
		record "nbdkit file (fdatasync per write)" "NBD (fio)" $wl $qd "$(fio_json nbd://127.0.0.1:10909 $wl $qd)"
	done
done

# --- etcd: three members ---------------------------------------------------------------
CLUSTER=e1=http://127.0.0.1:2381,e2=http://127.0.0.1:2382,e3=http://127.0.0.1:2383
for i in 1 2 3; do
	etcd --name e$i --data-dir "$WORK/etcd$i" --listen-peer-urls http://127.0.0.1:238$i \
		--initial-advertise-peer-urls http://127.0.0.1:238$i --listen-client-urls http://127.0.0.1:237$i \
		--advertise-client-urls http://127.0.0.1:237$i --initial-cluster $CLUSTER \
		--initial-cluster-state new --log-level error --quota-backend-bytes 8589934592 2>>"$WORK/etcd$i.log" &
	pids+=($!)
done
for _ in $(seq 100); do curl -sf http://127.0.0.1:2371/health 2>/dev/null | grep -q true && break; sleep 0.2; done
ETCD=etcd://127.0.0.1:2371,127.0.0.1:2372,127.0.0.1:2373
"$BIN" bench --target $ETCD --span 16M --qd 32 --duration 1s --prefill >/dev/null 2>&1
for wl in randwrite randread; do
	for qd in 1 32; do
		j=$("$BIN" bench --target $ETCD --span 16M --workload $wl --qd $qd --duration ${DUR}s --json 2>/dev/null | tail -1 || true)
		record "etcd 3.4, 3 members" "JSON gateway" $wl $qd "$j"
	done
done

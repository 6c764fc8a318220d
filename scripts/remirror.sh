#!/usr/bin/env bash
# Re-mirroring figures (issue 14, BENCHMARKS.md): a three-node cluster on 127.0.0.1, a volume
# (RF 2, REMIRROR_SIZE, default 1G) filled with data; then its secondary's disk is lost
# (SIGKILL, data directory deleted, restarted with --wiped) and the script times how long the
# primary takes to copy the whole volume to it and grow it back in (`disks` shows its new
# disk). With REMIRROR_MODE=remove, five nodes in three zones, and the secondary is gone for
# good instead: SIGKILLed, its directory deleted, `cairn node remove`d; the script times how
# long from the kill until another node holds a full copy in sync (node loss to full RF). Twice: with no client I/O, and under a client workload (REMIRROR_WORKLOAD, default
# randwrite, QD 8), whose throughput and p99 during the rebuild are compared with a run of
# the same workload just before. Every loop is bounded; everything stops on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${CAIRN_BIN:-./bin/cairn}
SIZE=${REMIRROR_SIZE:-1G}
WORKLOAD=${REMIRROR_WORKLOAD:-randwrite}
LOAD_SECONDS=${REMIRROR_LOAD_SECONDS:-10}
MODE=${REMIRROR_MODE:-wipe}
DATA=$(mktemp -d /tmp/cairn-remirror.XXXXXX)
PEERS=1=0@127.0.0.1:7101,2=1@127.0.0.1:7102,3=2@127.0.0.1:7103
ADMIN=http://127.0.0.1:8101,http://127.0.0.1:8102,http://127.0.0.1:8103
NODES="1 2 3"
if [[ $MODE == remove ]]; then
	PEERS=$PEERS,4=0@127.0.0.1:7104,5=1@127.0.0.1:7105
	ADMIN=$ADMIN,http://127.0.0.1:8104,http://127.0.0.1:8105
	NODES="1 2 3 4 5"
elif [[ $MODE != wipe ]]; then
	echo "REMIRROR_MODE=$MODE: want wipe or remove" >&2
	exit 2
fi
declare -A pid
stop() {
	trap - INT TERM EXIT
	kill -KILL "${pid[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$DATA"
}
trap stop INT TERM EXIT
start() { # start NODE [flags...]
	local i=$1
	shift
	"$BIN" node --id "$i" --peers "$PEERS" --data-dir "$DATA/n$i" "$@" >>"$DATA/n$i.log" 2>&1 &
	pid[$i]=$!
}
for i in $NODES; do start "$i"; done
for _ in $(seq 1 200); do "$BIN" status --admin "$ADMIN" >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" volume create rm --size "$SIZE" --rf 2 --admin "$ADMIN" >/dev/null
show() { "$BIN" volume show rm --json --admin "$ADMIN" 2>/dev/null; }
field() { python3 -c "import json,sys; v=json.load(sys.stdin); print($1)"; }
for _ in $(seq 1 200); do [[ $(show | field 'len(v["in_sync"])') == 2 ]] && break; sleep 0.1; done
echo "filling $SIZE (1 MiB writes)..."
"$BIN" bench --volume rm --target "$PEERS" --workload randwrite --bs 1048576 --qd 8 --prefill --duration 1s --json >"$DATA/fill.json" 2>/dev/null

# rebuild LABEL: lose the secondary's disk, restart it with --wiped, time the rebuild.
rebuild() {
	local v primary sec idx old t0 t1 now
	v=$(show)
	primary=$(echo "$v" | field 'v["primary"]')
	sec=$(echo "$v" | field '[r for r in v["replicas"] if r != v["primary"]][0]')
	idx=$(echo "$v" | field "v['replicas'].index($sec)")
	old=$(echo "$v" | field "v['disks'][$idx]")
	t0=$(date +%s.%N)
	kill -KILL "${pid[$sec]}"
	wait "${pid[$sec]}" 2>/dev/null || true
	rm -rf "$DATA/n$sec"
	local done="len(v['in_sync']) == 2 and v['disks'][$idx] not in ('', '$old')" what="rebuilt"
	if [[ $MODE == remove ]]; then
		"$BIN" node remove "$sec" --admin "$ADMIN" >/dev/null
		done="len(v['in_sync']) == 2 and $sec not in v['replicas'] and '' not in v['disks']" what="replaced"
	else
		start "$sec" --wiped
	fi
	for _ in $(seq 1 6000); do # at most 10 minutes
		now=$(show) || { sleep 0.1; continue; }
		if [[ $(echo "$now" | field "$done") == True ]]; then
			t1=$(date +%s.%N)
			python3 -c "t=$t1-$t0; mib=$(echo "$now" | field 'v["size_mib"]'); print(f'$1: node $sec (primary $primary) $what in {t:.1f} s from the kill: {mib} MiB, {mib/t:.0f} MiB/s')"
			echo "$t0 $t1" >"$DATA/rebuild.times"
			return
		fi
		sleep 0.1
	done
	echo "$1: not $what within 10 minutes" >&2
	exit 1
}
bench() { # bench SECONDS -> JSON line
	"$BIN" bench --volume rm --target "$PEERS" --workload "$WORKLOAD" --qd 8 --duration "${1}s" --json 2>/dev/null | tail -1
}
summary() { field '"%.0f ops/s, p50 %d us, p99 %d us, errors %d" % (v["ops_per_second"], v["p50_us"], v["p99_us"], v["errors"])'; }

rebuild "idle"
echo "$WORKLOAD QD 8 before: $(bench "$LOAD_SECONDS" | summary)"
tb=$(date +%s.%N)
"$BIN" bench --volume rm --target "$PEERS" --workload "$WORKLOAD" --qd 8 --duration "$((LOAD_SECONDS * 4))s" --json \
	>"$DATA/during.json" 2>"$DATA/during.progress" &
bpid=$!
sleep 2
rebuild "under $WORKLOAD QD 8"
wait "$bpid"
echo "$WORKLOAD QD 8 over $((LOAD_SECONDS * 4)) s around the rebuild: $(tail -1 "$DATA/during.json" | summary)"
# Throughput during the rebuild alone, from the bench's per-second progress lines.
python3 - "$tb" "$DATA/rebuild.times" "$DATA/during.progress" <<'PY'
import re, sys
tb = float(sys.argv[1])
t0, t1 = (float(x) - tb for x in open(sys.argv[2]).read().split())
pts = [(float(m[1]), int(m[2])) for m in re.finditer(r"^\s*(\d+)s\s+(\d+) ops", open(sys.argv[3]).read(), re.M)]
a = min(pts, key=lambda p: abs(p[0] - t0))
b = min(pts, key=lambda p: abs(p[0] - t1))
if b[0] > a[0]:
    print(f"during the rebuild ({a[0]:.0f}-{b[0]:.0f} s of the run): {(b[1] - a[1]) / (b[0] - a[0]):.0f} ops/s")
else:
    print("the rebuild was shorter than a second of the run: no separate figure")
PY

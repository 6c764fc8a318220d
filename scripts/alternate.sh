#!/usr/bin/env bash
# scripts/alternate.sh: Cairn beside nbdkit in alternating rounds, for ratios that this machine's
# drift from one minute to the next does not skew (BENCHMARKS.md, issue 7). Three `cairn node
# --nbd` processes with an RF 2 volume, and nbdkit's file plugin with every write made durable
# (fua=force); both filled with 256 MiB, then for each of $ROUNDS rounds (default 3): QD 1
# writes, QD 1 reads and QD 32 reads, $DUR seconds each (default 8), Cairn (through the
# primary's node) then nbdkit, with the same fio job. Prints a Markdown table.
# Needs fio and nbdkit.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DUR=${DUR:-8}; ROUNDS=${ROUNDS:-3}
go build -o bin/cairn ./cmd/cairn
BIN=$PWD/bin/cairn
WORK=$(mktemp -d "${BENCH_DIR:-/var/tmp}/cairn-alt.XXXXXX")
pids=()
cleanup() { kill -TERM "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
PEERS=1=0@127.0.0.1:7301,2=1@127.0.0.1:7302,3=2@127.0.0.1:7303
ADMIN=http://127.0.0.1:8301
for i in 1 2 3; do
	"$BIN" node --nbd 127.0.0.1:1095$i --id $i --peers $PEERS --admin 127.0.0.1:830$i --data-dir "$WORK/n$i" --log-level warn 2>>"$WORK/n$i.log" &
	pids+=($!)
done
for _ in $(seq 100); do curl -sf $ADMIN/healthz >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 50); do curl -sf -X POST $ADMIN/v1/volumes -d '{"name":"rf2","size":"1G","rf":2}' >/dev/null && break; sleep 0.2; done
P=$(curl -s $ADMIN/v1/volumes/rf2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["primary"])')
truncate -s 1G "$WORK/nbdkit.img"
nbdkit -f -i 127.0.0.1 -p 10909 --filter=fua file "$WORK/nbdkit.img" fuamode=force &
pids+=($!)
sleep 1
for u in nbd://127.0.0.1:1095$P/rf2 nbd://127.0.0.1:10909; do
	fio --name=fill --ioengine=nbd --uri=$u --rw=write --bs=1m --size=256m --output-format=terse >/dev/null 2>&1
done
row() { # name uri wl qd
	fio --name=b --ioengine=nbd --uri=$2 --rw=$3 --bs=4k --iodepth=$4 --size=256m --time_based --runtime=$DUR --ramp_time=1 --randrepeat=0 --output-format=json 2>/dev/null >"$WORK/f.json"
	python3 - "$1" "$3" "$4" "$WORK/f.json" <<'PY'
import json, sys
name, wl, qd, f = sys.argv[1:5]
t = open(f).read(); j = json.loads(t[t.index("{"):])["jobs"][0]; d = j["read" if wl == "randread" else "write"]
p = d["clat_ns"]["percentile"]
print("| %s | %s | %s | %.0f | %.0f | %.0f |" % (name, wl, qd, d["iops"], p["50.000000"]/1e3, p["99.000000"]/1e3))
PY
}
echo "| system | workload | QD | ops/s | p50 µs | p99 µs |"
echo "|---|---|---|---|---|---|"
for r in $(seq $ROUNDS); do
	for x in randwrite:1 randread:1 randread:32; do
		wl=${x%:*}; qd=${x#*:}
		row "Cairn RF 2, node NBD (round $r)" nbd://127.0.0.1:1095$P/rf2 $wl $qd
		row "nbdkit (round $r)" nbd://127.0.0.1:10909 $wl $qd
	done
done

#!/usr/bin/env bash
# make run: a local three-node cluster in three zones on 127.0.0.1, a 1 GiB volume "demo"
# (RF 2) attached over NBD by cairn attach; every node also serves every volume over NBD
# itself (127.0.0.1:10811-10813). Data lives under ./data (or $CAIRN_DATA); a second run reuses
# it. Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=./bin/cairn
DATA=${CAIRN_DATA:-./data}
NBD=${CAIRN_NBD:-127.0.0.1:10809}
PEERS=1=0@127.0.0.1:7001,2=1@127.0.0.1:7002,3=2@127.0.0.1:7003
mkdir -p "$DATA"
pids=()
stop() {
	trap - INT TERM EXIT
	echo
	echo "stopping (SIGTERM to every process; logs in $DATA/*.log)"
	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT
for i in 1 2 3; do
	"$BIN" node --id "$i" --peers "$PEERS" --data-dir "$DATA/n$i" --nbd "127.0.0.1:1081$i" >>"$DATA/n$i.log" 2>&1 &
	pids+=($!)
done
ADMIN=http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003 # each node's --admin: port + 1000
for _ in $(seq 1 100); do # every admin API up
	"$BIN" status --admin "$ADMIN" >/dev/null 2>&1 && break
	sleep 0.1
done
if out=$("$BIN" volume create demo --size 1G --rf 2 --admin "$ADMIN" 2>&1); then
	echo "$out"
elif [[ $out == *"already exists"* ]]; then
	echo "volume demo exists (reusing $DATA)"
else
	echo "$out" >&2
	exit 1
fi
"$BIN" attach demo --peers "$PEERS" --nbd "$NBD" >>"$DATA/attach.log" 2>&1 &
pids+=($!)
# Wait (at most 30 s) until the NBD port answers; the log holds earlier runs' lines too.
for _ in $(seq 1 300); do
	(exec 3<>"/dev/tcp/${NBD%:*}/${NBD##*:}") 2>/dev/null && break
	if ! kill -0 "${pids[-1]}" 2>/dev/null; then
		echo "cairn attach exited; see $DATA/attach.log" >&2
		exit 1
	fi
	sleep 0.1
done
cat <<MSG

Cairn is running: nodes 1, 2, 3 (zones 0, 1, 2) on 127.0.0.1:7001-7003, data in $DATA.
Volume demo (1 GiB, RF 2) is at nbd://$NBD/demo (cairn attach). Each node serves every volume
too, at nbd://127.0.0.1:10811/demo (node 1), 10812 and 10813: fastest through the volume's
primary ('$BIN volume show demo' names it). Try:

  qemu-io -f raw -c 'write -P 0xab 0 64k' -c 'read -P 0xab 0 64k' nbd://$NBD/demo
  nbdinfo nbd://$NBD/demo
  fio --name=t --ioengine=nbd --uri=nbd://$NBD/demo --rw=randwrite --bs=4k --iodepth=32 --size=64m --verify=crc32c
  $BIN volume list          # or: show demo, create NAME --size 1G, qos, delete (see --help)
  $BIN status
  $BIN stats demo

Ctrl-C stops the cluster; a second 'make run' reuses the data.
MSG
wait

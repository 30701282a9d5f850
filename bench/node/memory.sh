#!/usr/bin/env bash
# Resident memory of one tbnode with 32 connected peers (issue 3 target: <= 8 MB), reported, not
# gated. The hub listens on 127.0.0.38; 32 client-mode nodes (127.0.0.39, ephemeral ports) dial
# it. Usage: bench/node/memory.sh BIN_DIR [PEERS]
set -uo pipefail
bin=${1:?usage: memory.sh BIN_DIR [PEERS]}
peers=${2:-32}
work=$(mktemp -d)
pids=()
cleanup() {
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null && wait "${pids[@]}" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
"$bin/tbcert" init-ca --dir "$work/ca" --name membench >/dev/null || exit 1
for i in $(seq 0 "$peers"); do
  "$bin/tbcert" issue --ca "$work/ca" --name "m$i" --region bench --out "$work/m$i" >/dev/null || exit 1
done
node() { # index, extra flags...
  local i=$1
  shift
  "$bin/tbnode" --cert "$work/m$i/node.crt" --key "$work/m$i/node.key" --ca "$work/m$i/ca.crt" \
    --state-dir "$work/m$i/state" --log-level warn "$@" >"$work/m$i/log" 2>&1 &
  pids+=($!)
}
node 0 --listen 127.0.0.38:4590
hub=${pids[0]}
sleep 0.3
rss_idle=$(awk '/VmRSS/ {print $2}' "/proc/$hub/status")
# Private (not shared with other processes: heap, stacks, written pages) is what one more node
# costs; RSS also counts the shared library pages (GnuTLS, OpenSSL, ...).
priv() { awk '/^Private_(Clean|Dirty)/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
priv_idle=$(priv "$hub")
for i in $(seq "$peers"); do node "$i" --mode client --listen 127.0.0.39:0 --peer 127.0.0.38:4590; done
for _ in $(seq 150); do
  n=$("$bin/tbnode" status --state-dir "$work/m0/state" 2>/dev/null | grep -c '^peer .* connected')
  [ "$n" -ge "$peers" ] && break
  sleep 0.2
done
sleep 2 # a few pings each
rss=$(awk '/VmRSS/ {print $2}' "/proc/$hub/status")
echo "tbnode RSS: ${rss_idle} kB alone, ${rss} kB with $n connected peers (target <= 8192 kB)"
echo "tbnode private memory: $priv_idle kB alone, $(priv "$hub") kB with $n connected peers"
[ "$n" -ge "$peers" ]

#!/usr/bin/env bash
# bench/node/gossip.sh BIN_DIR [NODES] [SECONDS]: what gossiping a measurement costs the mesh.
# Starts NODES tbnode processes (default 5) on 127.0.0.150.. with one seed each (the first),
# no time sources: every node measures each peer once a second (crosscheck.peer_interval = 1),
# so the only gossip is those PEER measurements. After the mesh formed, counts for SECONDS
# (default 30): measurements signed (status "measurements sent"), broadcast copies sent on
# mesh streams (status "bcast_forwarded", originals included) and the bytes and packets on lo.
# The same run with peer_interval = 3600 (no measurements) gives lo's baseline (pings,
# DISCOVER/PEERS, ALIVE), which is subtracted. Reported, never gated. BIN_DIR holds tbnode and
# tbcert (this tree's build/bin, or another version's, to compare).
# Run it alone in a network namespace (lo's counters must be the mesh's only):
#   unshare -n sh -c 'ip link set lo up && bench/node/gossip.sh build/bin 5 30'
set -euo pipefail
bin=${1:?usage: gossip.sh BIN_DIR [NODES] [SECONDS]}
n=${2:-5} secs=${3:-30}
bin=$(cd "$bin" && pwd)
work=$(mktemp -d /tmp/tbnode-gossip.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/tbcert" init-ca --dir "$work/ca" --name gossip >/dev/null
for i in $(seq 0 $((n - 1))); do
  "$bin/tbcert" issue --ca "$work/ca" --name "g$i" --region "r$i" --ip "127.0.0.$((150 + i))" \
    --out "$work/g$i" >/dev/null
done

# lo's transmitted bytes or packets, of this network namespace (/sys shows another's).
lo() {
  sed 's/:/ /' /proc/net/dev | awk -v f="$1" '$1 == "lo" { print (f == "tx_bytes" ? $10 : $11) }'
}

# status_sum KEY: the sum over the nodes of KEY=VALUE in `tbnode status`.
status_sum() {
  local sum=0 v i
  for i in $(seq 0 $((n - 1))); do
    v=$("$bin/tbnode" status --state-dir "$work/s$i" 2>/dev/null |
      grep -oE "(^| )$1=[0-9]+" | head -1 | cut -d= -f2)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# run PEER_INTERVAL: starts the mesh, waits for it, counts SECONDS; prints
# "measurements copies lo_bytes lo_packets".
run() {
  local i seed peers
  pids=()
  for i in $(seq 0 $((n - 1))); do
    rm -rf "$work/s$i" && mkdir -m 700 "$work/s$i"
    peers=""
    [ "$i" -gt 0 ] && peers="peers = ( \"127.0.0.150:4700\" );"
    cat >"$work/g$i.conf" <<EOF
listen = "127.0.0.$((150 + i)):4700";
$peers
cert = "$work/g$i/node.crt"; key = "$work/g$i/node.key"; ca = "$work/g$i/ca.crt";
state_dir = "$work/s$i";
log_level = "warn";
crosscheck = { peer_interval = $1; };
EOF
    "$bin/tbnode" --config "$work/g$i.conf" 2>>"$work/log" &
    pids+=($!)
  done
  sleep 8 # the mesh forms and every peer has an offset estimate
  local m0 c0 b0 p0
  m0=$(status_sum sent) c0=$(status_sum bcast_forwarded) b0=$(lo tx_bytes) p0=$(lo tx_packets)
  sleep "$secs"
  echo "$(($(status_sum sent) - m0)) $(($(status_sum bcast_forwarded) - c0))" \
    "$(($(lo tx_bytes) - b0)) $(($(lo tx_packets) - p0))"
  for i in "${pids[@]}"; do kill "$i"; done
  for i in "${pids[@]}"; do wait "$i" 2>/dev/null || true; done
  pids=()
}

read -r m c b p <<<"$(run 1)"
read -r _ bc bb bp <<<"$(run 3600)"
echo "$n nodes, $secs s, $("$bin/tbnode" --version 2>/dev/null | head -1)"
echo "measurements signed: $m; broadcast copies sent: $c (baseline $bc)"
if [ "$m" -gt 0 ]; then
  awk -v m="$m" -v c="$c" -v bc="$bc" -v b="$b" -v bb="$bb" -v p="$p" -v bp="$bp" 'BEGIN {
    printf "per measurement: %.2f broadcast copies (stream messages), %.0f bytes and %.2f " \
           "packets on lo above the baseline\n", (c - bc) / m, (b - bb) / m, (p - bp) / m }'
fi

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
# What RSS is made of: file-backed pages (the binary and shared libraries: GnuTLS, OpenSSL...,
# shared with every other process mapping them) and anonymous pages (heap, stacks: this node's
# own). PSS divides each shared page among the processes mapping it.
breakdown() { # pid label
  awk -v what="$2" '/^Rss:/ {r = $2} /^Pss:/ {p = $2} /^Anonymous:/ {a = $2}
    END {printf "tbnode %s: RSS %d kB = libraries and binary %d kB + anonymous (heap, stacks) %d kB; PSS %d kB\n", what, r, r - a, a, p}' \
    "/proc/$1/smaps_rollup"
}
top_mappings() { # pid: the largest resident mappings
  awk '/^[0-9a-f]+-/ {name = ($6 == "" ? "[anon]" : $6)} /^Rss:/ {rss[name] += $2}
    END {for (n in rss) if (rss[n] >= 256) printf "  %6d kB %s\n", rss[n], n}' "/proc/$1/smaps" |
    sort -rn
}
node 0 --listen 127.0.0.38:4590
hub=${pids[0]}
sleep 0.3
breakdown "$hub" alone
for i in $(seq "$peers"); do node "$i" --mode client --listen 127.0.0.39:0 --peer 127.0.0.38:4590; done
for _ in $(seq 150); do
  n=$("$bin/tbnode" status --state-dir "$work/m0/state" 2>/dev/null | grep -c '^peer .* connected')
  [ "$n" -ge "$peers" ] && break
  sleep 0.2
done
sleep 2 # a few pings each
breakdown "$hub" "with $n connected peers, 2 s after"
sleep 6 # the burst of handshakes and PEERS is over
breakdown "$hub" "with $n connected peers, 8 s after"
top_mappings "$hub"
echo "target: RSS <= 8192 kB with 32 peers"
[ "$n" -ge "$peers" ]

#!/usr/bin/env bash
# bench/mesh/procs.sh BIN_DIR [SIZES] [STABLE_S] [PARTITION_S]: issue 10's benchmark with real
# processes. For each N in SIZES (comma-separated, default 10,30,60), in a network namespace of
# its own (unshare -n, only lo, up: nothing else runs there), starts N tbnode processes at once
# with default settings and default sources (none configured: the only measurements are the
# signed PEER measurements of mesh peers, every crosscheck.peer_interval = 16 s): node i listens
# on 127.0.1.x:4700 (even i) or 127.0.2.x:4700 (odd i) and has one seed, node 0. Certificates
# come from tbcert (CA and N node certificates in a temporary directory). It reports:
#   form_graph    s from start until the links the nodes list as connected join all N (status
#                 peers[].state), a broadcast can reach every node
#   form_origins  s until every node holds a verified signed measurement from every other node
#                 (status peer_matrix "from"); includes the first peer_interval (16 s)
#   then, over STABLE_S seconds (default 120) without polling the nodes:
#   drops         links lost in the window (the nodes' "peer X lost:" log lines, default
#                 log level), of which closed as duplicates of another connection in brackets
#   cpu%          CPU per node, % of one core (utime + stime from /proc/PID/stat)
#   pkt/s, B/s    per node: lo's transmitted packets and bytes in the namespace (/proc/net/dev)
#                 divided by N (the nodes expose no QUIC counters; every packet in the
#                 namespace is theirs)
#   rss           MiB resident per node (/proc/PID/status VmRSS), at the end of the window
#   db MB/h       per node: growth of the SQLite database over the window, extrapolated to an
#                 hour (page_count * page_size as a reader sees it, the WAL's committed pages
#                 included; the file sizes, which jump with WAL checkpoints, are printed too)
#   ooo           measurements dropped as out of order (status measurements.dropped
#                 .out_of_order) summed over the nodes for the whole run, and as % of those
#                 accepted
#   then a partition: nftables drops, in the namespace's input hook, everything between
#   127.0.1.0/24 and 127.0.2.0/24 for PARTITION_S seconds (default 60), and reconnects:
#   heal_graph    s from reconnection until the links join all N again
#   heal_origins  s until every node again holds a measurement from every origin made after the
#                 partition began (so at least one peer measurement crossed; includes waiting
#                 for the next peer_interval, up to 16 s)
# Then a table, and per-node cost of each N relative to the smallest next to log2 N ratio (the
# issue wants per-node cost to grow no faster than log N). Reported, never gated (CTest label
# bench). Needs root (unshare -n, nft); BIN_DIR holds tbnode and tbcert, so it can run any
# build. Logs and states of a run are kept when TB_BENCH_KEEP=1 (the path is printed).
#   bench/mesh/procs.sh build/bin 10,30,60 120 60
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
probe() { python3 "$here/procs_probe.py" "$@"; }
FORM_TIMEOUT=${TB_BENCH_FORM_TIMEOUT:-120} # s a mesh may take to form before it is given up
HEAL_TIMEOUT=${TB_BENCH_HEAL_TIMEOUT:-90}  # s after reconnection
FRESH_S=40                                 # a measurement younger than this is current
PORT=4700

addr() { # node index -> its address: even in 127.0.1.0/24, odd in 127.0.2.0/24
  echo "127.0.$((1 + $1 % 2)).$((1 + $1 / 2))"
}

# ---- one size, in its own network namespace: prints "key=value ..." on stdout --------------
one() {
  local bin=$1 work=$2 n=$3 stable=$4 part=$5
  local dir=$work/n$n i
  local dirs=()
  pids=() # global: the EXIT trap runs after this function returned
  # shellcheck disable=SC2317 # called by the trap
  stop_nodes() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  }
  trap stop_nodes EXIT
  ip link set lo up
  mkdir -p "$dir"
  for i in $(seq 0 $((n - 1))); do
    mkdir -m 700 "$dir/s$i"
    dirs+=("$dir/s$i")
    {
      echo "listen = \"$(addr "$i"):$PORT\";"
      [ "$i" -gt 0 ] && echo "peers = ( \"$(addr 0):$PORT\" );"
      echo "cert = \"$work/c$i/node.crt\"; key = \"$work/c$i/node.key\"; ca = \"$work/c$i/ca.crt\";"
      echo "state_dir = \"$dir/s$i\";"
    } >"$dir/s$i.conf"
  done
  local t0
  t0=$(date +%s.%N)
  for i in $(seq 0 $((n - 1))); do
    "$bin/tbnode" --config "$dir/s$i.conf" 2>"$dir/s$i.log" &
    pids+=($!)
  done
  local form
  form=$(probe wait "$t0" "$FORM_TIMEOUT" 0 "${dirs[@]}")
  echo "n=$n $form"
  echo "  N=$n formed: $form" >&2

  # The window: nothing polls the nodes, so what they spend is their own.
  local ticks lo0 lo1 cpu0=0 cpu1=0 db0 db1 lost0 lost1 dup0 dup1 p
  ticks=$(getconf CLK_TCK)
  snap_start=$(probe snap "$FRESH_S" "${dirs[@]}")
  cpu() { # summed utime + stime of the nodes, in clock ticks
    local s=0 p f
    for p in "${pids[@]}"; do
      f=$(cut -d')' -f2 "/proc/$p/stat" 2>/dev/null) || continue
      # after "(comm)": state is field 1, utime field 12, stime field 13
      s=$((s + $(echo "$f" | awk '{print $12 + $13}')))
    done
    echo "$s"
  }
  lo_tx() { sed 's/:/ /' /proc/net/dev | awk '$1 == "lo" { print $10, $11 }'; }
  lost() { cat "$dir"/s*.log | grep -c " lost: ${1:-}" || true; }
  read -r db0 _ <<<"$(probe db "${dirs[@]}")"
  lo0=$(lo_tx) cpu0=$(cpu) lost0=$(lost) dup0=$(lost duplicate)
  local w0 w1
  w0=$(date +%s.%N)
  sleep "$stable"
  w1=$(date +%s.%N)
  lo1=$(lo_tx) cpu1=$(cpu) lost1=$(lost) dup1=$(lost duplicate)
  read -r db1 _ <<<"$(probe db "${dirs[@]}")"
  local rss=0 alive=0
  for p in "${pids[@]}"; do
    [ -e "/proc/$p/status" ] || continue
    alive=$((alive + 1))
    rss=$((rss + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status")))
  done
  local snap_end
  snap_end=$(probe snap "$FRESH_S" "${dirs[@]}")
  awk -v n="$n" -v w0="$w0" -v w1="$w1" -v l0="$lo0" -v l1="$lo1" -v c0="$cpu0" -v c1="$cpu1" \
    -v hz="$ticks" -v d0="$db0" -v d1="$db1" -v rss="$rss" -v alive="$alive" \
    -v drops=$((lost1 - lost0)) -v dups=$((dup1 - dup0)) 'BEGIN {
      w = w1 - w0; split(l0, a, " "); split(l1, b, " ")
      printf "window=%.0f alive=%d drops=%d dups=%d cpu_pct=%.2f pkt_s=%.1f bytes_s=%.0f " \
             "rss_mib=%.1f db_mb_h=%.2f\n", w, alive, drops, dups,
             100 * (c1 - c0) / hz / w / n, (b[2] - a[2]) / w / n, (b[1] - a[1]) / w / n,
             rss / 1024 / (alive ? alive : 1), (d1 - d0) / n / w * 3600 / 1e6 }'
  echo "start: $snap_start" | sed 's/^/  /' >&2
  echo "end:   $snap_end" | sed 's/^/  /' >&2
  echo "end $snap_end"

  # The partition: both directions dropped on input, so no node's send fails; it just is lost.
  nft -f - <<EOF
table inet tbbench {
  chain in {
    type filter hook input priority 0; policy accept;
    ip saddr 127.0.1.0/24 ip daddr 127.0.2.0/24 drop
    ip saddr 127.0.2.0/24 ip daddr 127.0.1.0/24 drop
  }
}
EOF
  local tp th split_snap heal
  tp=$(date +%s.%N)
  sleep "$part"
  split_snap=$(probe snap "$FRESH_S" "${dirs[@]}")
  echo "  partitioned $part s: $split_snap" >&2
  th=$(date +%s.%N)
  nft delete table inet tbbench
  heal=$(probe wait "$th" "$HEAL_TIMEOUT" "$tp" "${dirs[@]}")
  echo "  N=$n healed: $heal" >&2
  echo "split $(echo "$split_snap" | grep -oE 'components=[0-9]+')"
  echo "heal $heal"
  local fin
  fin=$(probe snap "$FRESH_S" "${dirs[@]}")
  echo "final $fin"
  echo "  final: $fin" >&2
  echo "  warnings in the logs (first kinds):" >&2
  cat "$dir"/s*.log | grep -E " (warn|error) " | sed -E 's/^[^ ]+ +//; s/[0-9]+/#/g' |
    sort | uniq -c | sort -rn | head -8 | sed 's/^/    /' >&2 || true
}

if [ "${1:-}" = "--one" ]; then
  shift
  one "$@"
  exit 0
fi

# ---- the driver ---------------------------------------------------------------------------
bin=${1:?usage: procs.sh BIN_DIR [SIZES] [STABLE_S] [PARTITION_S]}
sizes=${2:-10,30,60}
stable=${3:-120}
part=${4:-60}
bin=$(cd "$bin" && pwd)
command -v nft >/dev/null || { echo "procs.sh: nft not found (Debian package nftables)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/tb-meshprocs.XXXXXX")
# shellcheck disable=SC2317 # called by the trap
cleanup() { if [ "${TB_BENCH_KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
max=0
IFS=, read -ra list <<<"$sizes"
for n in "${list[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
"$bin/tbcert" init-ca --dir "$work/ca" --name meshbench >/dev/null
for i in $(seq 0 $((max - 1))); do
  "$bin/tbcert" issue --ca "$work/ca" --name "m$i" --region "r$((i % 3))" --ip "$(addr "$i")" \
    --out "$work/c$i" >/dev/null
done
echo "tbnode $("$bin/tbnode" --version 2>/dev/null | head -1) from $bin; window $stable s," \
  "partition $part s; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

declare -A res
for n in "${list[@]}"; do
  out=$(unshare -n bash "$0" --one "$bin" "$work" "$n" "$stable" "$part") || true
  res[$n]=$(echo "$out" | tr '\n' ' ')
done

get() { echo "${res[$1]}" | tr ' ' '\n' | grep -E "^$2=" | head -1 | cut -d= -f2; }
# The "heal" and "end"/"final" groups repeat keys: pick the word after their marker.
after() { echo "${res[$1]}" | sed -E "s/.* $2 //" | tr ' ' '\n' | grep -E "^$3=" | head -1 | cut -d= -f2; }

printf '\n%-4s %9s %9s %6s %7s %8s %9s %7s %8s %11s %9s %9s\n' N form_grph form_orig drops \
  cpu% pkt/s B/s rss_MiB db_MB/h ooo heal_grph heal_orig
for n in "${list[@]}"; do
  ooo=$(after "$n" final dropped_out_of_order) acc=$(after "$n" final accepted)
  ooo_s="${ooo:-?}"
  [ -n "$ooo" ] && [ -n "$acc" ] && [ "$acc" -gt 0 ] &&
    ooo_s="$ooo($(awk -v o="$ooo" -v a="$acc" 'BEGIN { printf "%.1f%%", 100 * o / a }'))"
  printf '%-4s %9s %9s %6s %7s %8s %9s %7s %8s %11s %9s %9s\n' "$n" "$(get "$n" graph)" \
    "$(get "$n" origins)" "$(get "$n" drops)($(get "$n" dups))" "$(get "$n" cpu_pct)" \
    "$(get "$n" pkt_s)" "$(get "$n" bytes_s)" "$(get "$n" rss_mib)" "$(get "$n" db_mb_h)" \
    "$ooo_s" "$(after "$n" heal graph)" "$(after "$n" heal origins)"
done
base=${list[0]}
echo
echo "per-node cost relative to N=$base; log: log N / log $base (the issue's bound), N: N / $base"
for n in "${list[@]}"; do
  awk -v n="$n" -v b="$base" -v c="$(get "$n" cpu_pct)" -v cb="$(get "$base" cpu_pct)" \
    -v p="$(get "$n" pkt_s)" -v pb="$(get "$base" pkt_s)" -v y="$(get "$n" bytes_s)" \
    -v yb="$(get "$base" bytes_s)" -v d="$(get "$n" db_mb_h)" -v db="$(get "$base" db_mb_h)" '
    function r(x, y) { return (y + 0 > 0 && x != "") ? sprintf("%.2f", x / y) : "?" }
    BEGIN { printf "N=%-3d cpu x%s  pkt/s x%s  B/s x%s  db x%s  (log: x%.2f, N: x%.2f)\n", n,
            r(c, cb), r(p, pb), r(y, yb), r(d, db), log(n) / log(b), n / b }'
done

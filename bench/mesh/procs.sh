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
#   form_members  s until every node lists every other as an alive member (status "members",
#                 mesh v2; "n/a" for a build without a member list)
#   form_origins  s until every node holds a verified signed measurement from every other node
#                 (status peer_matrix "from"); includes the first peer interval (16 s, paced:
#                 node/pace.h, 54 s at 60 nodes)
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
#   heal_members  s until every node lists every other as alive again (mesh v2)
#   heal_origins  s until every node again holds a measurement from every origin made after the
#                 partition began (so at least one peer measurement crossed; includes waiting
#                 for the next paced peer interval, up to 16 s, 54 s at 60 nodes)
# Then a table; a table of per-node cost over the window (mean and largest over the nodes): CPU
# % of one core, RSS, and bytes/s each node's address received (in) and sent (out), counted by
# nftables rules per address in the namespace (table inet tbcount); and per-node cost of each N relative to the smallest next to log2 N ratio (the
# issue wants per-node cost to grow no faster than log N). Reported, never gated (CTest label
# bench). Needs root (unshare -n, nft); BIN_DIR holds tbnode and tbcert, so it can run any
# build. Logs and states of a run are kept when TB_BENCH_KEEP=1 (the path is printed);
# TB_BENCH_NICE=-5 runs the nodes at that niceness (see NICE below). Also printed per N: the
# cores the whole mesh used in the window, the machine's load average, the namespace's UDP
# counters (RcvbufErrors: a socket receive buffer overflowed) and the commonest warnings.
# TB_BENCH_SIZES overrides SIZES (CTest passes 10,30: TB_BENCH_SIZES=10,30,60 ctest -L bench
# -R bench_mesh_procs adds the 60-node run).
#   bench/mesh/procs.sh build/bin 10,30,60 120 60
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# pyenv's shim takes seconds to start on a busy machine: the system's interpreter if there is one.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
probe() { "$py" "$here/procs_probe.py" "$@"; }
FORM_TIMEOUT=${TB_BENCH_FORM_TIMEOUT:-120} # s a mesh may take to form before it is given up
HEAL_TIMEOUT=${TB_BENCH_HEAL_TIMEOUT:-90}  # s after reconnection
# Niceness of the nodes: on a machine other work keeps busy, a negative one (root) lets the
# nodes run when they want to, so formation and healing times are the mesh's, not the queue's.
NICE=${TB_BENCH_NICE:-0}
# A measurement younger than 2.5 of its origin's paced intervals is current (node/pace.h: the
# peer interval, 16 s, times n / (3 log2 n) where that is longer: 54 s at 60 nodes).
fresh_s() {
  awk -v n="$1" 'BEGIN { g = n > 1 ? 16 * n / (3 * log(n) / log(2)) : 16; if (g < 16) g = 16
                         printf "%.0f", 2.5 * g }'
}
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
  # Per-node traffic: a counter per node address on the namespace's output hook (what the node
  # sent) and input hook (what reached it). Nothing else runs here, and a node sends from its
  # listening address only.
  {
    echo "table inet tbcount {"
    echo "  chain out { type filter hook output priority -10; policy accept;"
    for i in $(seq 0 $((n - 1))); do echo "    ip saddr $(addr "$i") counter"; done
    echo "  }"
    echo "  chain in { type filter hook input priority -10; policy accept;"
    for i in $(seq 0 $((n - 1))); do echo "    ip daddr $(addr "$i") counter"; done
    echo "  }"
    echo "}"
  } | nft -f -
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
  # The watcher starts first (it takes the missing control sockets as silent nodes), so its
  # start-up is not counted in the formation time.
  local t0 watcher
  t0=$(date +%s.%N)
  probe wait "$t0" "$FORM_TIMEOUT" 0 "${dirs[@]}" >"$dir/form" &
  watcher=$!
  for i in $(seq 0 $((n - 1))); do
    nice -n "$NICE" "$bin/tbnode" --config "$dir/s$i.conf" 2>"$dir/s$i.log" &
    pids+=($!)
  done
  local form
  wait "$watcher" || true
  form=$(cat "$dir/form")
  echo "n=$n $form"
  echo "  N=$n formed: $form" >&2

  # The window: nothing polls the nodes, so what they spend is their own.
  local ticks lo0 lo1 cpu0=0 cpu1=0 db0 db1 lost0 lost1 dup0 dup1 p
  ticks=$(getconf CLK_TCK)
  snap_start=$(probe snap "$(fresh_s "$n")" "${dirs[@]}")
  cpu() { # summed utime + stime of the nodes, in clock ticks
    local s=0 p f
    for p in "${pids[@]}"; do
      f=$(cut -d')' -f2 "/proc/$p/stat" 2>/dev/null) || continue
      # after "(comm)": state is field 1, utime field 12, stime field 13
      s=$((s + $(echo "$f" | awk '{print $12 + $13}')))
    done
    echo "$s"
  }
  # The kernel's UDP counters of this namespace (RcvbufErrors: a socket buffer overflowed).
  udp() { awk '/^Udp:/ { if (h) { for (i = 2; i <= NF; i++) printf "%s=%s ", k[i], $i; exit }
                         h = 1; for (i = 2; i <= NF; i++) k[i] = $i }' /proc/net/snmp; }
  lo_tx() { sed 's/:/ /' /proc/net/dev | awk '$1 == "lo" { print $10, $11 }'; }
  lost() { cat "$dir"/s*.log | grep -c " lost: ${1:-}" || true; }
  # One line per node, in node order: "ticks bytes_out bytes_in" (utime + stime; the counters
  # of tbcount above).
  per_node() {
    local p f
    for p in "${pids[@]}"; do
      f=$(cut -d')' -f2 "/proc/$p/stat" 2>/dev/null) || { echo 0; continue; }
      echo "$f" | awk '{print $12 + $13}'
    done >"$dir/ticks"
    nft list table inet tbcount | awk '
      $1 == "chain" { c = $2 } $1 == "ip" && $4 == "counter" { b[c, $3] = $NF; a[++k] = $3 }
      END { for (i = 1; i <= k / 2; i++) print b["out", a[i]], b["in", a[i]] }' >"$dir/bytes"
    paste -d' ' "$dir/ticks" "$dir/bytes"
  }
  read -r db0 _ <<<"$(probe db "${dirs[@]}")"
  local nodes0 nodes1
  nodes0=$(per_node)
  lo0=$(lo_tx) cpu0=$(cpu) lost0=$(lost) dup0=$(lost duplicate)
  local w0 w1
  w0=$(date +%s.%N)
  sleep "$stable"
  w1=$(date +%s.%N)
  nodes1=$(per_node)
  lo1=$(lo_tx) cpu1=$(cpu) lost1=$(lost) dup1=$(lost duplicate)
  # The machine's load over the window (other work shares the cores: read times with it).
  la=$(cut -d' ' -f1 /proc/loadavg)
  read -r db1 _ <<<"$(probe db "${dirs[@]}")"
  local rss=0 alive=0 rss_max=0 r
  for p in "${pids[@]}"; do
    [ -e "/proc/$p/status" ] || continue
    alive=$((alive + 1))
    r=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status")
    rss=$((rss + r))
    [ "$r" -gt "$rss_max" ] && rss_max=$r
  done
  # Per node over the window: CPU % of a core, bytes/s out and in; the mean and the largest.
  paste -d' ' <(echo "$nodes0") <(echo "$nodes1") | awk -v hz="$ticks" -v w0="$w0" -v w1="$w1" \
    -v rmax="$rss_max" '{
      w = w1 - w0; c = 100 * ($4 - $1) / hz / w; o = ($5 - $2) / w; i = ($6 - $3) / w
      n++; sc += c; so += o; si += i
      if (c > mc) mc = c; if (o > mo) mo = o; if (i > mi) mi = i
    } END { printf "node_cpu_max=%.2f node_out_bs=%.0f node_out_bs_max=%.0f node_in_bs=%.0f " \
                   "node_in_bs_max=%.0f rss_mib_max=%.1f\n", mc, so / n, mo, si / n, mi, rmax / 1024 }'
  local snap_end
  snap_end=$(probe snap "$(fresh_s "$n")" "${dirs[@]}")
  awk -v n="$n" -v w0="$w0" -v w1="$w1" -v l0="$lo0" -v l1="$lo1" -v c0="$cpu0" -v c1="$cpu1" \
    -v hz="$ticks" -v d0="$db0" -v d1="$db1" -v rss="$rss" -v alive="$alive" \
    -v drops=$((lost1 - lost0)) -v dups=$((dup1 - dup0)) -v la="$la" 'BEGIN {
      w = w1 - w0; split(l0, a, " "); split(l1, b, " ")
      printf "window=%.0f alive=%d drops=%d dups=%d cpu_pct=%.2f pkt_s=%.1f bytes_s=%.0f " \
             "rss_mib=%.1f db_mb_h=%.2f mesh_cores=%.2f load=%s\n", w, alive, drops, dups,
             100 * (c1 - c0) / hz / w / n, (b[2] - a[2]) / w / n, (b[1] - a[1]) / w / n,
             rss / 1024 / (alive ? alive : 1), (d1 - d0) / n / w * 3600 / 1e6,
             (c1 - c0) / hz / w, la }'
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
  local tp split_snap heal
  tp=$(date +%s.%N)
  sleep "$part"
  split_snap=$(probe snap "$(fresh_s "$n")" "${dirs[@]}")
  echo "  partitioned $part s: $split_snap" >&2
  heal=$(probe heal "$HEAL_TIMEOUT" "$tp" tbbench "${dirs[@]}")
  echo "  N=$n healed: $heal" >&2
  echo "split $(echo "$split_snap" | grep -oE 'components=[0-9]+')"
  echo "heal $heal"
  local fin
  fin=$(probe snap "$(fresh_s "$n")" "${dirs[@]}")
  echo "final $fin"
  echo "  final: $fin" >&2
  echo "  UDP in the namespace, whole run: $(udp)" >&2
  echo "  warnings in the logs (first kinds):" >&2
  cat "$dir"/s*.log | grep -E "^[^ ]+ tbnode (warn|error): " | sed -E 's/^[^ ]+ [^ ]+ //; s/[0-9]+/#/g' |
    sort | uniq -c | sort -rn | head -8 | sed 's/^/    /' >&2 || true
}

if [ "${1:-}" = "--one" ]; then
  shift
  one "$@"
  exit 0
fi

# ---- the driver (a function: bash parses it whole, so an edit under a run cannot derail it) ----
main() {
  bin=${1:?usage: procs.sh BIN_DIR [SIZES] [STABLE_S] [PARTITION_S]}
  sizes=${TB_BENCH_SIZES:-${2:-10,30,60}}
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

  fmt='%-4s %9s %9s %9s %9s %7s %8s %9s %7s %8s %11s %9s %9s %9s %5s\n'
  # shellcheck disable=SC2059 # one format for the head and the rows
  printf "\n$fmt" N form_grph form_memb form_orig drops cpu% pkt/s B/s rss_MiB db_MB/h ooo \
    heal_grph heal_memb heal_orig load
  for n in "${list[@]}"; do
    ooo=$(after "$n" final dropped_out_of_order) acc=$(after "$n" final accepted)
    ooo_s="${ooo:-?}"
    [ -n "$ooo" ] && [ -n "$acc" ] && [ "$acc" -gt 0 ] &&
      ooo_s="$ooo($(awk -v o="$ooo" -v a="$acc" 'BEGIN { printf "%.1f%%", 100 * o / a }'))"
    # shellcheck disable=SC2059
    printf "$fmt" "$n" "$(get "$n" graph)" "$(get "$n" members)" \
      "$(get "$n" origins)" "$(get "$n" drops)($(get "$n" dups))" "$(get "$n" cpu_pct)" \
      "$(get "$n" pkt_s)" "$(get "$n" bytes_s)" "$(get "$n" rss_mib)" "$(get "$n" db_mb_h)" \
      "$ooo_s" "$(after "$n" heal graph)" "$(after "$n" heal members)" \
      "$(after "$n" heal origins)" "$(get "$n" load)"
  done
  # The per-node cost (issue 10 wants it to grow no faster than log N): over the window, CPU
  # in % of one core, resident memory at its end, bytes/s each node's address sent (out) and
  # received (in); the mean over the nodes and the largest.
  cfmt='%-4s %9s %8s %8s %8s %10s %10s %10s %10s\n'
  # shellcheck disable=SC2059
  printf "\nper-node cost over the window (mean / max over the nodes)\n$cfmt" N cpu% cpu%max \
    rss_MiB rss_max in_B/s in_max out_B/s out_max
  for n in "${list[@]}"; do
    # shellcheck disable=SC2059
    printf "$cfmt" "$n" "$(get "$n" cpu_pct)" "$(get "$n" node_cpu_max)" "$(get "$n" rss_mib)" \
      "$(get "$n" rss_mib_max)" "$(get "$n" node_in_bs)" "$(get "$n" node_in_bs_max)" \
      "$(get "$n" node_out_bs)" "$(get "$n" node_out_bs_max)"
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
}
main "$@"

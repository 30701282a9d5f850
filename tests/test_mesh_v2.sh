#!/usr/bin/env bash
# Mesh v2 (ADR 0010) with real processes: 12 time nodes on 127.0.0.200-211 with
# mesh.active_view = 4, each seeded with the one before it, measuring four chronyds (three
# honest, one +2 s under libfaketime). Checks, each with a deadline:
#   - every node keeps at most active_view + 2 connections (HyParView, not a full mesh; the
#     slack: a link dialled for one exchange, a probe or a shuffle answer, lives up to 10 s);
#   - every node's status.json lists signed peer measurements of all 12 origins (PlumTree
#     carries every origin's batches to every node over the partial mesh);
#   - the verdicts agree on every node (the liar a falseticker, the rest ok);
#   - node12 killed: every other node's member list says it is dead within 15 s.
# Prints connections per node and broadcast copies per delivery (duplicates / delivered).
#   test_mesh_v2.sh BIN_DIR
set -uo pipefail
bin=${1:?usage: test_mesh_v2.sh BIN_DIR}
# TB_MESH_V2_NODES: fewer under the sanitizers (node/CMakeLists.txt), where 12 processes
# and four chronyds outrun two cores.
N=${TB_MESH_V2_NODES:-12}
AV=4
base=200
for t in jq chronyd; do
  command -v "$t" >/dev/null || { echo "FAIL: $t not installed (scripts/setup)"; exit 1; }
done
faketime_so=""
for f in /usr/lib/*/faketime/libfaketime.so.1; do [ -e "$f" ] && faketime_so=$f; done
[ -n "$faketime_so" ] || { echo "FAIL: libfaketime not found (Debian package faketime)"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tb-meshv2.XXXXXX")
pids=()
cleanup() {
  [ ${#pids[@]} -gt 0 ] && kill -KILL "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
  rm -f /dev/shm/faketime_shm_* /dev/shm/sem.faketime_sem_* 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/lib/mesh-setup.sh" # ms_free_ports
port=$(ms_free_ports) || { echo "FAIL: no free UDP port"; exit 1; }
ntp_port=$((port + 1))
ip() { echo "127.0.0.$((base + $1 - 1))"; }   # node i (1..N)
cip() { echo "127.0.0.$((base + N + $1))"; }  # chronyd k (0..3)

nfail=0
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  nfail=$((nfail + 1))
}
status() { "$bin/tbnode" status --json --state-dir "$work/n$1/state" 2>/dev/null; }
wait_for() { # seconds what command...
  local t=$1 what=$2 t0
  shift 2
  t0=$(date +%s)
  until "$@"; do
    [ $(($(date +%s) - t0)) -ge "$t" ] && { fail "$what (after $t s)"; return 1; }
    sleep 1
  done
  pass "$what after $(($(date +%s) - t0)) s"
}

for k in 0 1 2 3; do
  d="$work/chrony$k"
  mkdir -p "$d"
  printf 'port %s\nbindaddress %s\nlocal stratum 1\nallow 127.0.0.0/8\ncmdport 0\nbindcmdaddress /\npidfile %s/pid\n' \
    "$ntp_port" "$(cip "$k")" "$d" >"$d/chrony.conf"
  if [ "$k" = 3 ]; then
    LD_PRELOAD=$faketime_so FAKETIME=+2s DONT_FAKE_MONOTONIC=1 \
      chronyd -x -d -u root -f "$d/chrony.conf" >"$d/log" 2>&1 &
  else
    chronyd -x -d -u root -f "$d/chrony.conf" >"$d/log" 2>&1 &
  fi
  pids+=($!)
done

"$bin/tbcert" init-ca --dir "$work/ca" --name meshv2 >/dev/null || { echo "FAIL: tbcert"; exit 1; }
for i in $(seq $N); do
  "$bin/tbcert" issue --ca "$work/ca" --name "node$i" --region "r$((i % 3))" --ip "$(ip "$i")" \
    --key-type ed25519 --out "$work/n$i" >/dev/null || { echo "FAIL: tbcert issue"; exit 1; }
  {
    cat <<EOF
listen = "$(ip "$i"):$port";
cert = "node.crt"; key = "node.key"; ca = "ca.crt"; state_dir = "state";
ping_interval_ms = 500;
connect_timeout_ms = 3000;
mesh = { active_view = $AV; };
sources = (
  { kind = "ntp"; address = "$(cip 0):$ntp_port"; minpoll = 0; maxpoll = 0; },
  { kind = "ntp"; address = "$(cip 1):$ntp_port"; minpoll = 0; maxpoll = 0; },
  { kind = "ntp"; address = "$(cip 2):$ntp_port"; minpoll = 0; maxpoll = 0; },
  { kind = "ntp"; address = "$(cip 3):$ntp_port"; minpoll = 0; maxpoll = 0; }
);
EOF
    [ "$i" -gt 1 ] && echo "peers = ( \"$(ip $((i - 1))):$port\" );"
  } >"$work/n$i/tbnode.conf"
done
declare -A npid
for i in $(seq $N); do
  "$bin/tbnode" --config "$work/n$i/tbnode.conf" --log-level info >"$work/n$i/log" 2>&1 &
  npid[$i]=$!
  pids+=($!)
done

connections() { status "$1" | jq '[.peers[]? | select(.state == "connected")] | length'; }
bounded_and_formed() {
  local i c
  for i in $(seq $N); do
    c=$(connections "$i")
    [ -n "$c" ] && [ "$c" -ge 1 ] && [ "$c" -le $((AV + 2)) ] || return 1
  done
}
all_origins() { # every node's peer matrix has rows from all N origins
  local i k
  for i in $(seq $N); do
    k=$(status "$i" | jq '[.peer_matrix[]?.from] | unique | length')
    [ "${k:-0}" -ge $N ] || return 1
  done
}
verdicts_agree() {
  local i v first=""
  for i in $(seq $N); do
    v=$(status "$i" | jq -c '[.verdicts[]? | select(.kind == "ntp") | [.name, .verdict]] | sort')
    [ -n "$v" ] && [ "$v" != "[]" ] || return 1
    echo "$v" | jq -e --arg l "$(cip 3):$ntp_port" \
      'map(select(.[0] == $l))[0][1] == "falseticker" and
       (map(select(.[0] != $l and .[1] != "ok")) | length) == 0' >/dev/null || return 1
    [ -z "$first" ] && first=$v
    [ "$v" = "$first" ] || return 1
  done
}
dead_everywhere() { # node -> every other live node holds it dead
  local i s
  for i in $(seq $((N - 1))); do
    s=$(status "$i" | jq -r --arg n "node$1" '[.members[]? | select(.name == $n)][0].state')
    [ "$s" = dead ] || return 1
  done
}

wait_for 60 "every node connected to 1..$((AV + 2)) peers (active_view $AV)" bounded_and_formed
printf 'connections per node:'
for i in $(seq $N); do printf ' %s' "$(connections "$i")"; done
echo
wait_for 90 "every node holds peer measurements of all $N origins" all_origins
wait_for 90 "verdicts agree on every node (liar falseticker, the rest ok)" verdicts_agree
# A link dialled for one probe or shuffle answer lives up to 10 s: bounded again within 12 s, not
# at one instant (a snapshot failed this once in CI with such a link).
wait_for 12 "still at most $((AV + 2)) connections per node" bounded_and_formed
printf 'connections per node:'
for i in $(seq $N); do printf ' %s' "$(connections "$i")"; done
echo

dl=0 dup=0
for i in $(seq $N); do
  read -r d u < <("$bin/tbnode" status --state-dir "$work/n$i/state" |
    awk '$1 == "stats" {for (f = 2; f <= NF; f++) {split($f, kv, "="); v[kv[1]] = kv[2]}
         print v["bcast_delivered"], v["bcast_dup"]}')
  dl=$((dl + ${d:-0})) dup=$((dup + ${u:-0}))
done
echo "broadcast copies: $dl delivered, $dup duplicates over $N nodes ($(awk -v a="$dup" -v b="$dl" 'BEGIN {printf "%.2f", b ? a / b : 0}') duplicates per delivery)"

kill -KILL "${npid[$N]}"
t0=$(date +%s%N)
wait_for 15 "node$N (killed) marked dead by all $((N - 1)) others" dead_everywhere $N &&
  echo "   within $((($(date +%s%N) - t0) / 1000000)) ms"

if [ "$nfail" -gt 0 ]; then
  # what each node held at the end: its links, the origins it has measurements of, the members
  # it does not hold alive (a line that names few links and few origins is a cut-off part)
  for i in $(seq $N); do
    status "$i" | jq -r --arg i "$i" '"node\($i): links [\([.peers[]? | select(.state ==
      "connected") | .name] | join(" "))] origins \([.peer_matrix[]?.from] | unique | length)
      not alive [\([.members[]? | select(.state != "alive") | "\(.name)=\(.state)"] |
      join(" "))]"' 2>/dev/null || echo "node$i: no status"
  done
  for i in 1 $N; do echo "--- node$i"; grep -v " debug: " "$work/n$i/log" | tail -5; done
  echo "$nfail check(s) failed"
  exit 1
fi
echo "all passed"

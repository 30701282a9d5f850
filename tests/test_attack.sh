#!/usr/bin/env bash
# Issue 11's attacks, one per run: three honest tbnode processes (n1, n2, n3) measure three
# chronyds (ntp1 and ntp2 honest, liar +2 s by libfaketime) and gossip their measurements; then
# tests/tool_attack.c attacks them, as the member "mallory" (a valid certificate of the same CA)
# or as an outsider. Asserts, each as PASS or FAIL:
#   - the honest nodes still exchange measurements: after the attack, each accepts new
#     measurements of the other two within 10 s (status json measurements.accepted, and the
#     origins of its recent broadcasts);
#   - they reach the same verdicts as without an attack: ntp1, ntp2 and ntp3 "ok", liar "falseticker",
#     on every node;
#   - the attacker is disconnected (CONNECTION_CLOSE MISBEHAVING) and refused when it comes back
#     where the budget says so (junk, stall-streams, bcast-flood, measure-flood, peers-bad);
#   - memory stays bounded: each node's VmRSS grows by less than 16 MB over the attack (64 MB
#     for an AddressSanitizer build, whose quarantine keeps freed memory resident);
#   - log volume stays bounded: fewer than 60 lines (info and above) per node over the attack;
#   - per attack: forged-origin broadcasts (claiming another member, sent to n1) are not
#     delivered (none comes back through n2 or n3); id-poison leaves every origin's gossip
#     flowing (the measurement check above); peers-bad leaves no made-up member in any peer
#     table and counts the refused addresses; bcast-flood and measure-flood leave fewer than
#     400 broadcasts delivered per node over the attack (the flood sends 7,500 to each);
#     handshake-flood still admits a real peer (5 of 5 fresh connections) and keeps the mesh;
#     handshake-flood-wide (no prefix holding more than a newcomer's, so a stranger gets no room)
#     still admits a configured peer (n1 lists the attacker's address in its peers: 5 of 5),
#     which took the room of outsiders' handshakes (n1's budget.room_for_peers > 0);
#     forged-origin closes and bans the member that forwards the forgeries (n1 knows the
#     certificates of the origins claimed, so each forgery costs it a penalty); peers-fake
#     (made-up members at addresses the nodes allow and dial) costs each node at most the
#     dials its budget for one source of learning allows (4 at once, 6 a minute, and a few for
#     the honest nodes' own news: budget.learned_dials).
# Prints the numbers (tool output, RSS, lines, counters) either way. Bounded to 60 s plus set-up;
# everything started is stopped and removed on any exit.
#
#   test_attack.sh BIN_DIR TOOL_ATTACK CASE
# Environment: ATTACK_PLAIN_CONFIG=1 leaves the `mesh` group out of the node configs (to run
# the same attack against a tbnode that does not know it).
set -uo pipefail
bin=${1:?usage: test_attack.sh BIN_DIR TOOL_ATTACK CASE}
tool=${2:?usage: test_attack.sh BIN_DIR TOOL_ATTACK CASE}
case_=${3:?usage: test_attack.sh BIN_DIR TOOL_ATTACK CASE}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/mesh-setup.sh
source "$root/scripts/lib/mesh-setup.sh"

declare -A bases=([junk]=110 [stall-streams]=116 [bcast-flood]=122 [measure-flood]=128
  [peers-bad]=134 [handshake-flood]=140 [forged-origin]=146 [id-poison]=152
  [handshake-flood-wide]=158 [peers-fake]=164)
base=${bases[$case_]:-}
[ -n "$base" ] || { echo "unknown case $case_" >&2; exit 2; }
for t in jq chronyd; do
  command -v "$t" >/dev/null || { echo "FAIL: $t not installed (scripts/setup)" >&2; exit 1; }
done

NODES=(n1 n2 n3)
rss_limit_mb=16
# Not `ldd | grep -q`: grep leaving early fails the pipe under pipefail, and the limit stayed 16.
case $(ldd "$bin/tbnode" 2>/dev/null) in *libasan*) rss_limit_mb=64 ;; esac
tool_pid=""
cleanup() {
  [ -n "$tool_pid" ] && kill -KILL "$tool_pid" 2>/dev/null && wait "$tool_pid" 2>/dev/null
  ms_stop
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$(mktemp -d "${TMPDIR:-/tmp}/tb-attack.XXXXXX")
ms_init "$work" "$bin" "$base" || exit 1
[ -n "$ms_faketime" ] || { echo "FAIL: libfaketime not installed (scripts/setup)" >&2; exit 1; }

npass=0 nfail=0
pass() { echo "PASS: $*"; npass=$((npass + 1)); }
fail() { echo "FAIL: $*"; nfail=$((nfail + 1)); }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
ip_of() { ms_ip "$1"; } # 0..2 nodes, 3 ntp1, 4 ntp2, 5 ntp3, 6 liar, 7 the attacker, 8 a stranger
status() { "$bin/tbnode" status --json --state-dir "$work/$1/state" 2>/dev/null; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
lines() { grep -cv " debug: " "$work/$1/log" 2>/dev/null || echo 0; }

finish() {
  local n
  for n in "${NODES[@]}"; do
    echo "--- $n: $(status "$n" | jq -c '{peers: [.peers[]? | {name, state}], budget,
      measurements: .measurements | {accepted, sent}}' 2>/dev/null)"
    if [ "$nfail" -gt 0 ]; then grep -v " debug: " "$work/$n/log" | tail -8 | sed 's/^/    /'; fi
  done
  echo "attack $case_: $npass passed, $nfail failed"
  [ "$nfail" -eq 0 ]
  exit $?
}

# ---- set-up ---------------------------------------------------------------------------------
"$bin/tbcert" init-ca --dir "$work/ca" --name attack-mesh >/dev/null || { fail "tbcert init-ca"; finish; }
for i in 0 1 2; do
  n=${NODES[$i]}
  "$bin/tbcert" issue --ca "$work/ca" --name "$n" --region "r$i" --ip "$(ip_of "$i")" \
    --key-type ed25519 --out "$work/$n" >/dev/null || { fail "tbcert issue $n"; finish; }
done
"$bin/tbcert" issue --ca "$work/ca" --name mallory --region nowhere --ip "$(ip_of 7)" \
  --key-type ed25519 --out "$work/mallory" >/dev/null || { fail "tbcert issue mallory"; finish; }
ms_chrony ntp1 3 && ms_chrony ntp2 4 && ms_chrony ntp3 5 && ms_chrony liar 6 "$MS_SHIFT" || { fail "chronyd"; finish; }
for i in 0 1 2; do
  n=${NODES[$i]}
  {
    echo "listen = \"$(ip_of "$i"):$ms_port\";"
    echo 'cert = "node.crt"; key = "node.key"; ca = "ca.crt"; state_dir = "state";'
    echo 'ping_interval_ms = 250; connect_timeout_ms = 3000;'
    [ "$i" -gt 0 ] && echo "peers = ( \"n1@$(ip_of 0):$ms_port\" );"
    # The attacker's address is a configured peer of n1 (nothing listens there).
    [ "$i" -eq 0 ] && [ "$case_" = handshake-flood-wide ] && echo "peers = ( \"mallory@$(ip_of 7):$ms_port\" );"
    [ "${ATTACK_PLAIN_CONFIG:-0}" = 1 ] || echo 'mesh = { allowed_ranges = [ "127.0.0.0/8" ]; };'
    src=()
    for s in 3 4 5 6; do
      src+=("{ kind = \"ntp\"; address = \"$(ip_of "$s"):$MS_NTP_PORT\"; minpoll = 0; maxpoll = 0; }")
    done
    (IFS=,; echo "sources = ( ${src[*]} );")
  } >"$work/$n/tbnode.conf"
done
for n in "${NODES[@]}"; do
  "$bin/tbnode" --config "$work/$n/tbnode.conf" --log-level info >"$work/$n/log" 2>&1 &
  ms_pids+=($!)
done

verdict() { # node kind-less source address -> verdict
  status "$1" | jq -r --arg a "$2" '[.verdicts[]? | select(.name == $a)][0].verdict // "absent"' 2>/dev/null
}
verdicts_ok() {
  local n
  for n in "${NODES[@]}"; do
    [ "$(verdict "$n" "$(ip_of 3):$MS_NTP_PORT")" = ok ] || return 1
    [ "$(verdict "$n" "$(ip_of 4):$MS_NTP_PORT")" = ok ] || return 1
    [ "$(verdict "$n" "$(ip_of 5):$MS_NTP_PORT")" = ok ] || return 1
    [ "$(verdict "$n" "$(ip_of 6):$MS_NTP_PORT")" = falseticker ] || return 1
  done
}
mesh_full() {
  local n k
  for n in "${NODES[@]}"; do
    k=$(status "$n" | jq '[.peers[]? | select(.state == "connected" and (.name | startswith("n")))] | length' 2>/dev/null)
    [ "${k:-0}" -ge 2 ] || return 1
  done
}
wait_for() { # seconds what command...
  local end=$(($(now_ms) + $1 * 1000)) what=$2
  shift 2
  until "$@"; do
    [ "$(now_ms)" -lt "$end" ] || { fail "$what (not within the time allowed)"; return 1; }
    sleep 0.5
  done
  pass "$what"
}
t0=$(now_ms)
wait_for 20 "full mesh of n1, n2, n3" mesh_full || finish
wait_for 40 "verdicts before the attack: ntp1, ntp2, ntp3 ok, liar falseticker on every node" verdicts_ok || finish
echo "set-up took $(($(now_ms) - t0)) ms"

# ---- the attack -----------------------------------------------------------------------------
declare -A rss0 lines0 acc0 bc0 dials0
learned_dials() { status "$1" | jq -r '.budget.learned_dials // 0' 2>/dev/null || echo 0; }
accepted() { status "$1" | jq -r '.measurements.accepted // 0' 2>/dev/null || echo 0; }
delivered() { status "$1" | jq -r '.broadcasts_delivered // 0' 2>/dev/null || echo 0; }
for i in 0 1 2; do
  n=${NODES[$i]}
  rss0[$n]=$(rss_kb "${ms_pids[$i]}") lines0[$n]=$(lines "$n") bc0[$n]=$(delivered "$n")
  dials0[$n]=$(learned_dials "$n")
done
targets=()
for i in 0 1 2; do targets+=(--target "$(ip_of "$i"):$ms_port"); done
args=(--attack "$case_" --ca "$work/mallory/ca.crt" --cert "$work/mallory/node.crt"
  --key "$work/mallory/node.key" --bind "$(ip_of 7)" --duration 15)
case $case_ in
junk) args+=(--count 300 --rate 200) ;;
stall-streams) args+=(--count 200) ;;
bcast-flood | measure-flood) args+=(--rate 500) ;;
peers-bad) args+=(--count 40 --rate 20) ;;
peers-fake) args+=(--count 30 --rate 2) ;;
handshake-flood) args=("${args[@]}" --count 60 --sources 12); targets=(--target "$(ip_of 0):$ms_port") ;;
handshake-flood-wide) args+=(--count 1 --sources 64 --stranger "$(ip_of 8)"); targets=(--target "$(ip_of 0):$ms_port") ;;
forged-origin) args+=(--claim n2 --claim n3 --rate 20 --count 100) ;;
id-poison) args+=(--count 400 --rate 80) ;;
esac
ta=$(now_ms)
"$tool" "${args[@]}" "${targets[@]}" >"$work/tool.out" 2>&1 &
tool_pid=$!
wait "$tool_pid"
trc=$?
tool_pid=""
tb=$(now_ms)
sed 's/^/  tool: /' "$work/tool.out"
echo "attack ran $((tb - ta)) ms, tool exit $trc"
[ "$trc" -eq 0 ] || fail "tool_attack could not run the attack (exit $trc)"
val() { awk -F= -v k="$1" '$1 == k {print $2}' "$work/tool.out" | tail -1; }

# ---- what the honest nodes did --------------------------------------------------------------
for n in "${NODES[@]}"; do acc0[$n]=$(accepted "$n"); done
fresh() { # every node accepted new measurements since the attack ended
  local n
  for n in "${NODES[@]}"; do [ "$(accepted "$n")" -gt "${acc0[$n]}" ] || return 1; done
}
wait_for 10 "measurements still exchanged after the attack (every node accepts new ones)" fresh
# Each node broadcasts a text of its own after the attack; every node must deliver both others'
# (`status --broadcasts` lists operators' text broadcasts: "bcast ORIGIN ID TEXT").
for n in "${NODES[@]}"; do
  "$bin/tbnode" broadcast --state-dir "$work/$n/state" "after-$n-$$" >/dev/null 2>&1 ||
    fail "$n: tbnode broadcast failed"
done
origins_fresh() { # each node delivered the after-attack text of both other origins
  local n o got
  for n in "${NODES[@]}"; do
    got=$("$bin/tbnode" status --broadcasts --state-dir "$work/$n/state" 2>/dev/null)
    for o in "${NODES[@]}"; do
      [ "$n" = "$o" ] && continue
      echo "$got" | grep -q "^bcast $o [0-9]* after-$o-$$\$" || return 1
    done
  done
}
wait_for 10 "every node delivers both other origins' broadcasts after the attack" origins_fresh
wait_for 15 "same verdicts after the attack: ntp1, ntp2, ntp3 ok, liar falseticker on every node" verdicts_ok
mesh_full && pass "the honest mesh is still full" || fail "the honest mesh lost a link"

for i in 0 1 2; do
  n=${NODES[$i]}
  r=$(rss_kb "${ms_pids[$i]}") l=$(lines "$n") d=$(delivered "$n")
  grow=$(((r - rss0[$n]) / 1024)) nl=$((l - lines0[$n]))
  echo "$n: VmRSS ${rss0[$n]} -> $r kB, $nl log lines, $((d - bc0[$n])) broadcasts delivered during the attack"
  [ "$grow" -lt "$rss_limit_mb" ] && pass "$n: memory bounded (+$grow MB)" ||
    fail "$n: VmRSS grew by $grow MB (limit $rss_limit_mb)"
  [ "$nl" -lt 60 ] && pass "$n: log bounded ($nl lines)" || fail "$n: $nl log lines during the attack (limit 60)"
  case $case_ in
  bcast-flood | measure-flood)
    [ $((d - bc0[$n])) -lt 400 ] && pass "$n: flood mostly dropped ($((d - bc0[$n])) broadcasts delivered)" ||
      fail "$n: $((d - bc0[$n])) broadcasts delivered during the flood (limit 400)" ;;
  peers-fake)
    # 4 at once and 6 a minute from mallory, and up to 4 of the honest nodes' own news.
    dials=$(($(learned_dials "$n") - dials0[$n])) secs=$((($(now_ms) - ta) / 1000))
    limit=$((4 + (6 * secs + 59) / 60 + 4))
    fake=$(status "$n" | jq '[.peers[]? | select(.name | startswith("fake-"))] | length' 2>/dev/null)
    echo "$n: $dials dials to learned members in $secs s, ${fake:-?} made-up members in its table"
    [ "$dials" -le "$limit" ] && pass "$n: made-up members cost $dials dials (limit $limit in $secs s)" ||
      fail "$n: made-up members cost $dials dials in $secs s (limit $limit)" ;;
  peers-bad)
    fake=$(status "$n" | jq '[.peers[]? | select(.name | startswith("fake-"))] | length' 2>/dev/null)
    refused=$(status "$n" | jq '.budget.addrs_refused // 0' 2>/dev/null)
    [ "${fake:-1}" -eq 0 ] && pass "$n: no made-up member in the peer table" ||
      fail "$n: ${fake:-?} made-up members in the peer table"
    [ "${refused:-0}" -gt 0 ] && pass "$n: $refused learned addresses refused" ||
      fail "$n: no learned address refused" ;;
  esac
done

case $case_ in
junk | stall-streams | bcast-flood | measure-flood | peers-bad)
  [ "$(val closed_by_peer)" = 1 ] && pass "attacker disconnected by every node for misbehaving after $(val closed_after_ms) ms" ||
    fail "attacker not disconnected by every node (closed_by_peer=$(val closed_by_peer))"
  [ "$(val redial_refused)" = 1 ] && pass "attacker refused when it comes back (banned)" ||
    fail "attacker not refused when it came back" ;;
handshake-flood)
  [ "$(val admitted)" = 5/5 ] && pass "a real peer admitted during the flood (5 of 5)" ||
    fail "a real peer admitted $(val admitted) during the flood (want 5/5)" ;;
handshake-flood-wide)
  [ "$(val admitted)" = 5/5 ] && pass "a configured peer admitted during the flood (5 of 5)" ||
    fail "a configured peer admitted $(val admitted) during the flood (want 5/5)"
  room=$(status n1 | jq '.budget.room_for_peers // 0' 2>/dev/null)
  refused=$(status n1 | jq '.budget.handshakes_refused // 0' 2>/dev/null)
  echo "n1: ${refused:-?} handshakes refused, ${room:-?} admitted in others' room; a stranger got $(val stranger_admitted)"
  [ "${room:-0}" -gt 0 ] && pass "n1's tables were full: the configured peer took others' room ($room times)" ||
    fail "n1 never had to make room for the configured peer (room_for_peers=${room:-?}): the flood did not fill its tables" ;;
forged-origin)
  [ "$(val closed_by_first)" = 1 ] && pass "the forwarder of forgeries disconnected by n1 after $(val closed_after_ms) ms" ||
    fail "the forwarder of forgeries not disconnected by n1 (closed_by_first=$(val closed_by_first))"
  [ "$(val redial_refused)" = 1 ] && pass "the forwarder refused when it comes back (banned)" ||
    fail "the forwarder not refused when it came back"
  # Sent to n1 only: one n1 delivers, n1 forwards and n2 or n3 forwards back to the attacker.
  [ "$(val forged_echoed)" = 0 ] && pass "no forged broadcast delivered and forwarded (claiming n2 or n3)" ||
    fail "$(val forged_echoed) of $(val sent) forged broadcasts (claiming n2 or n3) delivered and forwarded back" ;;
esac
finish

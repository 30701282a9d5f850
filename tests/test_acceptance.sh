#!/usr/bin/env bash
# Issue 6's acceptance test, on loopback 127.0.0.100-109 (scripts/lib/mesh-setup.sh has the
# layout): three tbnode processes in regions eu, us and ap; two honest chronyds; one chronyd
# shifted +2 s by libfaketime that every node sees (liar.test); one name, split.test, that eu's
# hosts file maps to an honest chronyd and us's and ap's to one shifted +2 s; node eu's own
# Roughtime server (radius 1 s) as a source of every node.
#
# Asserts, each reported on its own line as PASS or FAIL:
#   - the chronyds answer as set up (tbntp: honest ones within 10 ms of 0, shifted ones within
#     50 ms of +2 s), the nodes start and form a full mesh;
#   - within 60 s of the nodes' start, every node's `status --json` says liar.test
#     "falseticker", split.test "inconsistent", and ntp1.test, ntp2.test and
#     rt.test "ok", each verdict with evidence;
#   - every verdict carries since-when (RFC 3339, after the start); no node ever shows a source
#     it has judged as warming_up again (sampled every second; the last warming_up is reported);
#   - forged measurements (tests/tool_forge.c, joined as the valid node "mallory": a batch
#     claiming to be eu's, and a measurement of a ghost origin signed with a random key in
#     mallory's own batch) are dropped by every node and counted (malformed / bad_signature),
#     are cited by no
#     verdict, and change no verdict.
# Prints the verdict table of every node at the end. Everything started is stopped, and every
# file removed, on any exit (trap).
#
#   test_acceptance.sh BIN_DIR TOOL_FORGE
set -uo pipefail
bin=${1:?usage: test_acceptance.sh BIN_DIR TOOL_FORGE}
forge=${2:?usage: test_acceptance.sh BIN_DIR TOOL_FORGE}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/mesh-setup.sh
source "$root/scripts/lib/mesh-setup.sh"

VERDICT_DEADLINE_S=60
FORGED_SEQ=1000000000

for tool in jq chronyd; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not installed (scripts/setup)" >&2; exit 1; }
done
forge_pid=""
cleanup() {
  [ -n "$forge_pid" ] && kill -KILL "$forge_pid" 2>/dev/null && wait "$forge_pid" 2>/dev/null
  ms_stop
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$(mktemp -d "${TMPDIR:-/tmp}/tb-accept.XXXXXX")
ms_init "$work" "$bin" 100 || exit 1
[ -n "$ms_faketime" ] || { echo "FAIL: libfaketime not installed (scripts/setup)" >&2; exit 1; }

npass=0 nfail=0
pass() {
  echo "PASS: $*"
  npass=$((npass + 1))
}
fail() {
  echo "FAIL: $*"
  nfail=$((nfail + 1))
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(now_ms)
since() { echo "$(($(now_ms) - $1)) ms"; }

# An honest source may be "unreachable" or "insufficient data" before data arrives, but in no
# sample may a node call it a falseticker or inconsistent: the first such sample is kept.
declare -A accused
HONEST=("ntp ntp1.test" "ntp ntp2.test" "ntp nts.test" "roughtime rt.test")
check_honest() { # node
  local h kind name got
  for h in "${HONEST[@]}"; do
    read -r kind name <<<"$h"
    [ -n "${accused[$1 $name]:-}" ] && continue
    got=$(ms_verdict "$work/status-$1.json" "$kind" "$name")
    case ${got%%$'\t'*} in
    falseticker | inconsistent)
      accused[$1 $name]="\"${got%%$'\t'*}\" $(($(now_ms) - t_start)) ms after start: $(jq -r --arg h "$name" \
        '[.verdicts[]? | select(.name | startswith($h))][0].reason' "$work/status-$1.json")" ;;
    esac
  done
}

# warming_up: a source not judged yet (soon after start, until every region expected to measure
# it has, or 30 s). Once a node has judged a source, it never shows it warming up again: the
# first such sample is kept. How long each node showed any source warming up is reported.
declare -A judged rewarmed warm_last
track_warming() { # node
  local key v
  while IFS=$'\t' read -r key v; do
    [ -n "$key" ] || continue
    if [ "$v" = warming_up ]; then
      warm_last[$1]=$(($(now_ms) - t_start))
      [ -n "${judged[$1 $key]:-}" ] && [ -z "${rewarmed[$1 $key]:-}" ] &&
        rewarmed[$1 $key]="$(($(now_ms) - t_start)) ms after start"
    else
      judged[$1 $key]=1
    fi
  done < <(jq -r '.verdicts[]? | "\(.kind) \(.name)\t\(.verdict)"' "$work/status-$1.json" 2>/dev/null)
}

save_status() { # saves every node's status --json into $work/status-NODE.json
  local node
  for node in "${MS_NODES[@]}"; do
    ms_status_json "$node" >"$work/status-$node.json.tmp" && mv "$work/status-$node.json.tmp" "$work/status-$node.json"
    [ -n "${t_start:-}" ] && { check_honest "$node"; track_warming "$node"; }
  done
}

# Stops the nodes with SIGTERM: each must exit 0 within 3 s, with no sanitizer report in its log.
stop_nodes_checked() {
  local i pid rc log
  [ ${#ms_pids[@]} -eq 3 ] || return 0
  kill -TERM "${ms_pids[@]}" 2>/dev/null
  for i in 0 1 2; do
    pid=${ms_pids[$i]} log=$(ms_log "${MS_NODES[$i]}")
    for _ in $(seq 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    if [ "$rc" -ne 0 ]; then
      fail "${MS_NODES[$i]}: exit status $rc after SIGTERM (want 0 within 3 s)"
    elif grep -Eq "Sanitizer|runtime error" "$log"; then
      fail "${MS_NODES[$i]}: sanitizer report in its log: $(grep -Em1 "Sanitizer|runtime error" "$log")"
    else
      pass "${MS_NODES[$i]}: clean exit after SIGTERM"
    fi
  done
  ms_pids=()
}

finish() {
  save_status
  stop_nodes_checked
  if [ -n "${t_start:-}" ]; then
    local node h name
    for node in "${MS_NODES[@]}"; do
      for h in "${HONEST[@]}"; do
        name=${h#* }
        if [ -n "${accused[$node $name]:-}" ]; then
          fail "$node: honest source $name was called ${accused[$node $name]}"
        else
          pass "$node: honest source $name never called a falseticker or inconsistent (sampled every second)"
        fi
      done
      local k back=""
      for k in "${!rewarmed[@]}"; do
        [ "${k%% *}" = "$node" ] && back+=" ${k#* } (${rewarmed[$k]})"
      done
      if [ -n "$back" ]; then
        fail "$node: judged source(s) went back to warming_up:$back"
      else
        pass "$node: no judged source went back to warming_up (last warming_up seen ${warm_last[$node]:-never} ms after start)"
      fi
    done
  fi
  echo
  echo "== verdicts per node (kind, source, verdict, since (UTC), evidence count, reason)"
  ms_verdict_table "$work"
  if [ "$nfail" -gt 0 ]; then
    echo
    echo "== last log lines of each node"
    local node
    for node in "${MS_NODES[@]}"; do
      echo "--- $node"
      grep -v " debug: " "$(ms_log "$node")" 2>/dev/null | tail -6
    done
  fi
  echo
  echo "acceptance: $npass passed, $nfail failed, $(since "$t0") in all"
  [ "$nfail" -eq 0 ]
  exit $?
}

# ---- set-up: certificates, chronyds ---------------------------------------------------------
ms_prepare || { fail "certificates, keys and configs (tbcert, tbroughtime keygen)"; finish; }
ms_start_chronys || { fail "chronyd start"; finish; }

check_chrony() { # name want_seconds tolerance_ms
  local addr out off
  addr=$(cat "$work/chrony-$1/addr")
  # chronyd binds its port a moment after it starts (under libfaketime, a second or two).
  until out=$("$bin/tbntp" query "$addr" --timeout 1 2>&1); do
    [ "$(now_ms)" -lt "$chrony_deadline" ] || break
    sleep 0.25
  done
  off=$(echo "$out" | awk '$1 == "offset" {print $2}')
  if [ -n "$off" ] && awk -v o="$off" -v w="$2" -v t="$3" 'BEGIN {d = o - w; if (d < 0) d = -d; exit !(d * 1000 < t)}'; then
    pass "chronyd $1 at $addr: offset $off s (want $2 s ± $3 ms)"
  else
    fail "chronyd $1 at $addr: offset '${off:-none}' (want $2 s ± $3 ms): $(echo "$out" | tail -1)"
  fi
}
chrony_deadline=$(($(now_ms) + 10000)) # for all five together: bounds the test's run time
check_chrony ntp1 0 10
check_chrony ntp2 0 10
check_chrony split-eu 0 10
check_chrony liar 2 50
check_chrony split-shifted 2 50

# ---- the nodes --------------------------------------------------------------------------------
t_start=$(now_ms)
ms_start_nodes
sleep 1
dead=0
for i in 0 1 2; do
  if ! kill -0 "${ms_pids[$i]}" 2>/dev/null; then
    fail "tbnode ${MS_NODES[$i]} exited at start: $(grep -v ' debug: ' "$(ms_log "${MS_NODES[$i]}")" | tail -2 | tr '\n' ' ')"
    dead=1
  fi
done
[ "$dead" -eq 0 ] || finish

mesh_full() {
  local node k
  for node in "${MS_NODES[@]}"; do
    k=$(ms_status_json "$node" | jq '[.peers[]? | select(.state == "connected")] | length' 2>/dev/null)
    [ "${k:-0}" -ge 2 ] || return 1
  done
}
for _ in $(seq 100); do
  mesh_full && break
  sleep 0.2
done
if mesh_full; then
  pass "full mesh of eu, us, ap after $(since "$t_start")"
else
  fail "no full mesh 20 s after start"
  finish
fi

# ---- verdicts within 60 s ---------------------------------------------------------------------
node_done() { # node -> 0 when all its verdicts are as expected, with evidence
  local e kind name want got
  for e in "${MS_EXPECT[@]}"; do
    read -r kind name want <<<"$e"
    got=$(ms_verdict "$work/status-$1.json" "$kind" "$name")
    [ "${got%%$'\t'*}" = "$want" ] && [ "${got##*$'\t'}" -gt 0 ] || return 1
  done
}
declare -A done_at
while :; do
  save_status
  all=1
  for node in "${MS_NODES[@]}"; do
    [ -n "${done_at[$node]:-}" ] && continue
    if node_done "$node"; then done_at[$node]=$(($(now_ms) - t_start)); else all=0; fi
  done
  [ "$all" -eq 1 ] && break
  [ $(($(now_ms) - t_start)) -lt $((VERDICT_DEADLINE_S * 1000)) ] || break
  sleep 1
done
for node in "${MS_NODES[@]}"; do
  for e in "${MS_EXPECT[@]}"; do
    read -r kind name want <<<"$e"
    got=$(ms_verdict "$work/status-$node.json" "$kind" "$name")
    v=${got%%$'\t'*} nev=${got##*$'\t'}
    if [ "$v" = "$want" ] && [ "$nev" -gt 0 ]; then
      pass "$node: $kind $name is \"$v\" with $nev evidence reference(s)"
    else
      fail "$node: $kind $name is \"$v\" with $nev evidence reference(s), want \"$want\" with evidence, ${VERDICT_DEADLINE_S} s after start"
    fi
  done
  # The proof of the split: eu's honest view against the +2 s view of us or ap.
  origins=$(jq -r '[.verdicts[]? | select(.name | startswith("split.test")) | .evidence[].origin]
    | unique | join(",")' "$work/status-$node.json" 2>/dev/null)
  if [[ ,$origins, == *,eu,* && ( ,$origins, == *,us,* || ,$origins, == *,ap,* ) ]]; then
    pass "$node: split.test evidence cites eu and another region ($origins)"
  else
    fail "$node: split.test evidence cites '${origins}', want eu and us or ap"
  fi
  # since-when: every verdict says when its shown verdict last changed, after the node started
  badsince=$(jq -r --argjson lo "$(((t_start - 1000) * 1000000))" --argjson hi "$(($(now_ms) * 1000000))" \
    '[.verdicts[]? | select((.since | test("^20[0-9-]{8}T[0-9:.]+Z$") | not) or .since_ns < $lo
      or .since_ns > $hi) | .name] | join(" ")' "$work/status-$node.json" 2>/dev/null)
  nv=$(jq '[.verdicts[]?] | length' "$work/status-$node.json" 2>/dev/null)
  if [ -z "$badsince" ] && [ "${nv:-0}" -gt 0 ]; then
    pass "$node: all $nv verdicts carry since-when (RFC 3339, after the start)"
  else
    fail "$node: verdicts without a sane since-when: '${badsince}' (of ${nv:-0})"
  fi
  if [ -n "${done_at[$node]:-}" ]; then
    pass "$node: every verdict as expected $((done_at[$node] / 1000)).$(printf %03d $((done_at[$node] % 1000))) s after start"
  fi
done

# ---- forged measurements ----------------------------------------------------------------------
counter() { jq -r ".measurements.dropped.$2 // \"none\"" "$work/status-$1.json" 2>/dev/null; }
declare -A bad0 unk0
save_status
for node in "${MS_NODES[@]}"; do
  bad0[$node]=$(counter "$node" bad_signature)
  unk0[$node]=$(counter "$node" malformed)
done
peers=()
for node in "${MS_NODES[@]}"; do peers+=(--peer "$(ms_node_ip "$node"):$ms_port"); done
"$forge" --cert "$work/mallory/node.crt" --key "$work/mallory/node.key" \
  --ca "$work/mallory/ca.crt" --state-dir "$work/mallory/state" --claim eu \
  --seq "$FORGED_SEQ" --source "ntp1.test:$MS_NTP_PORT" --timeout 15 "${peers[@]}" >"$work/forge.out" 2>&1 &
forge_pid=$!
wait "$forge_pid"
frc=$?
forge_pid=""
sed 's/^/  /' "$work/forge.out"
if [ "$frc" -ne 0 ]; then
  fail "tool_forge could not deliver the forged measurements (exit $frc)"
else
  forged_counted() { # node -> 0 when both forgeries are counted as dropped
    local b u
    b=$(counter "$1" bad_signature) u=$(counter "$1" malformed)
    [[ $b =~ ^[0-9]+$ && $u =~ ^[0-9]+$ ]] || return 1
    # Mesh v2: mallory's batch claiming to be eu's is malformed everywhere (a batch is its
    # broadcast origin's own); the ghost's measurement in mallory's own batch is a bad signature.
    [ $((u - unk0[$1])) -ge 1 ] && [ $((b - bad0[$1])) -ge 1 ]
  }
  for _ in $(seq 50); do
    save_status
    ok=1
    for node in "${MS_NODES[@]}"; do forged_counted "$node" || ok=0; done
    [ "$ok" -eq 1 ] && break
    sleep 0.2
  done
  sleep 2 # a forgery that was taken in would show in the verdicts by now
  save_status
  for node in "${MS_NODES[@]}"; do
    b=$(counter "$node" bad_signature) u=$(counter "$node" malformed)
    if forged_counted "$node"; then
      pass "$node: forged measurements dropped and counted (bad_signature ${bad0[$node]} -> $b, malformed ${unk0[$node]} -> $u)"
    else
      fail "$node: forged measurements not counted as dropped (bad_signature ${bad0[$node]} -> $b, malformed ${unk0[$node]} -> $u)"
    fi
    cited=$(jq --argjson s "$FORGED_SEQ" '[.verdicts[]?.evidence[]? | select(.seq == $s or (.origin | startswith("ghost")))] | length' \
      "$work/status-$node.json" 2>/dev/null)
    if [ "${cited:-x}" = 0 ]; then
      pass "$node: no verdict cites a forged measurement"
    else
      fail "$node: ${cited:-?} verdict evidence reference(s) to forged measurements"
    fi
    got=$(ms_verdict "$work/status-$node.json" ntp ntp1.test)
    if [ "${got%%$'\t'*}" = ok ]; then
      pass "$node: ntp1.test (the source the forgeries lied about) still ok"
    else
      fail "$node: ntp1.test is \"${got%%$'\t'*}\" after the forgeries, want \"ok\""
    fi
  done
fi

finish

#!/usr/bin/env bash
# Issue 6's benchmark "time from a source starting to lie until every node reports it",
# reported, never gated. The mesh of scripts/lib/mesh-setup.sh on 127.0.0.120-129, except that
# liar.test starts honest; once every node calls it "ok", its chronyd is replaced by one shifted
# +2 s by libfaketime on the same address, and the time until each node calls it "falseticker"
# is measured (status --json polled every 100 ms). Also prints the signed-measurement traffic.
#   bench/accept/detect.sh BIN_DIR [RUNS]
set -uo pipefail
bin=${1:?usage: detect.sh BIN_DIR [RUNS]}
runs=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib/mesh-setup.sh
source "$root/scripts/lib/mesh-setup.sh"
trap ms_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$(mktemp -d "${TMPDIR:-/tmp}/tb-detect.XXXXXX")
ms_init "$work" "$bin" 120 || exit 1
ms_prepare || exit 1
ms_chrony ntp1 3 && ms_chrony ntp2 4 && ms_chrony liar 5 && ms_chrony split-eu 6 &&
  ms_chrony split-shifted 7 "$MS_SHIFT" || exit 1
ms_start_nodes
now_ms() { echo $(($(date +%s%N) / 1000000)); }

all_say() { # verdict -> 0 when every node gives liar.test that verdict
  local node got
  for node in "${MS_NODES[@]}"; do
    ms_status_json "$node" >"$work/status-$node.json"
    got=$(ms_verdict "$work/status-$node.json" ntp liar.test)
    [ "${got%%$'\t'*}" = "$1" ] || return 1
  done
}
wait_all() { # verdict seconds
  local end=$(($(now_ms) + $2 * 1000))
  until all_say "$1"; do
    [ "$(now_ms)" -lt "$end" ] || return 1
    sleep 0.1
  done
}

for run in $(seq "$runs"); do
  wait_all ok 60 || { echo "run $run: liar.test never ok on every node" >&2; exit 1; }
  sleep 3
  ms_chrony_stop liar
  t0=$(now_ms)
  ms_chrony liar 5 "$MS_SHIFT"
  declare -A seen=()
  end=$((t0 + 60000))
  while [ ${#seen[@]} -lt 3 ] && [ "$(now_ms)" -lt "$end" ]; do
    for node in "${MS_NODES[@]}"; do
      [ -n "${seen[$node]:-}" ] && continue
      ms_status_json "$node" >"$work/status-$node.json"
      got=$(ms_verdict "$work/status-$node.json" ntp liar.test)
      [ "${got%%$'\t'*}" = falseticker ] && seen[$node]=$(($(now_ms) - t0))
    done
    sleep 0.1
  done
  printf 'run %d: liar.test lies from t=0 (chronyd restarted under libfaketime +2 s):' "$run"
  for node in "${MS_NODES[@]}"; do printf ' %s %s ms;' "$node" "${seen[$node]:-never}"; done
  echo
  [ ${#seen[@]} -eq 3 ] || exit 1
  # Back to honest for the next run.
  ms_chrony_stop liar
  ms_chrony liar 5
  unset seen
done
for node in "${MS_NODES[@]}"; do
  jq -r --arg n "$node" '"\($n): \(.measurements.sent) measurements signed and sent, \(.measurements.accepted) accepted from peers"' "$work/status-$node.json"
done
echo "(poll interval of every NTP source: 2^$MS_MINPOLL s; the first chronyd under libfaketime takes ~1-2 s to answer)"

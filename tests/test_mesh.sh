#!/usr/bin/env bash
# Multi-node mesh tests on loopback (127.0.0.10-49 and ::1), with real tbnode processes:
#   test_mesh.sh BIN_DIR mesh3|mesh5|ipv6   scripts/test-quic --local N: every pair connected,
#                                           pinged, broadcast reaches all (one seed)
#   test_mesh.sh BIN_DIR restart            a killed node is noticed, and re-dialled by the
#                                           others after it restarts without any seed
#   test_mesh.sh BIN_DIR hostname           a seed given by host name ("localhost:PORT") is
#                                           resolved at dial time and connects
#   test_mesh.sh BIN_DIR probe              scripts/test-quic --peer against a running node:
#                                           passes with a mesh certificate, fails with the
#                                           reason for a foreign CA's certificate
set -uo pipefail
bin=${1:?usage: test_mesh.sh BIN_DIR CASE}
case_=${2:?usage: test_mesh.sh BIN_DIR CASE}
root=$(cd "$(dirname "$0")/.." && pwd)
export TB_BIN=$bin

case $case_ in
mesh3) exec "$root/scripts/test-quic" --local 3 --port 4511 --timeout 40 ;;
mesh5) exec "$root/scripts/test-quic" --local 5 --port 4521 --timeout 60 ;;
ipv6) exec "$root/scripts/test-quic" --local 2 --ipv6 --port 4531 --timeout 40 ;;
restart | probe | hostname) ;;
*) echo "unknown case $case_" >&2; exit 2 ;;
esac

work=$(mktemp -d)
declare -A pid
cleanup() {
  for p in "${pid[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
port=4541
[ "$case_" = probe ] && port=4542
[ "$case_" = hostname ] && port=4543
addr() { echo "127.0.0.$((39 + $1)):$port"; }

"$bin/tbcert" init-ca --dir "$work/ca" --name restart-test >/dev/null || exit 1
for i in 1 2 3; do
  "$bin/tbcert" issue --ca "$work/ca" --name "node$i" --region "region$i" \
    --ip "127.0.0.$((39 + i))" --out "$work/n$i" >/dev/null || exit 1
  cat >"$work/n$i/tbnode.conf" <<CONF
listen = "$(addr "$i")";
cert = "node.crt"; key = "node.key"; ca = "ca.crt";
state_dir = "state";
ping_interval_ms = 200;
CONF
done

start() { # index [--peer ADDR]
  local i=$1
  shift
  "$bin/tbnode" --config "$work/n$i/tbnode.conf" --log-level debug "$@" >>"$work/n$i/log" 2>&1 &
  pid[$i]=$!
}
connected() { # node peer -> 0 when node shows peer connected with a ping estimate
  "$bin/tbnode" status --state-dir "$work/n$1/state" 2>/dev/null |
    awk -v p="node$2" '$1 == "peer" && $2 == p && $3 == "connected" && /rtt_us=/ {f=1} END {exit !f}'
}
wait_for() { # seconds description command...
  local t=$1 what=$2
  shift 2
  local end=$(($(date +%s) + t))
  until "$@"; do
    if [ "$(date +%s)" -ge "$end" ]; then
      echo "FAIL: $what (after $t s)" >&2
      for i in 1 2 3; do echo "--- node$i" >&2; grep -v " debug: " "$work/n$i/log" | tail -8 >&2; done
      exit 1
    fi
    sleep 0.2
  done
  echo "ok: $what"
}
full_mesh() {
  local i j
  for i in 1 2 3; do for j in 1 2 3; do
    [ "$i" = "$j" ] || connected "$i" "$j" || return 1
  done; done
}
node3_gone() { ! connected 1 3 && ! connected 2 3; }

if [ "$case_" = hostname ]; then
  # localhost is 127.0.0.1 on every Debian host; this test's own port keeps it apart.
  sed -i "s/^listen = .*/listen = \"127.0.0.1:$port\";/" "$work/n1/tbnode.conf"
  start 1
  start 2 --peer "localhost:$port"
  wait_for 20 "node2 reaches node1 through the name localhost" connected 2 1
  wait_for 10 "node1 sees node2" connected 1 2
  echo "all passed"
  exit 0
fi

if [ "$case_" = probe ]; then
  start 1
  "$bin/tbcert" issue --ca "$work/ca" --name probe --region ops --out "$work/probe" >/dev/null
  "$bin/tbcert" init-ca --dir "$work/other-ca" --name other >/dev/null
  "$bin/tbcert" issue --ca "$work/other-ca" --name probe --region ops --out "$work/foreign" >/dev/null
  out=$("$root/scripts/test-quic" --peer "$(addr 1)" --cert "$work/probe/node.crt" \
    --key "$work/probe/node.key" --ca "$work/probe/ca.crt" --timeout 10)
  rc=$?
  echo "$out"
  [ "$rc" -eq 0 ] || { echo "FAIL: probe with a mesh certificate: exit $rc" >&2; exit 1; }
  [[ $out =~ ^OK\ .*peer\ \'node1\'\ region\ \'region1\',\ ping\ RTT\ [0-9.]+\ us$ ]] ||
    { echo "FAIL: probe output" >&2; exit 1; }
  out=$("$root/scripts/test-quic" --peer "$(addr 1)" --cert "$work/foreign/node.crt" \
    --key "$work/foreign/node.key" --ca "$work/probe/ca.crt" --timeout 4)
  rc=$?
  echo "$out"
  [ "$rc" -eq 1 ] || { echo "FAIL: probe with a foreign certificate: exit $rc, want 1" >&2; exit 1; }
  [[ $out =~ ^FAIL\ .*refused ]] || { echo "FAIL: no refusal reason given" >&2; exit 1; }
  kill -0 "${pid[1]}" || { echo "FAIL: node1 died" >&2; exit 1; }
  echo "all passed"
  exit 0
fi

start 1
start 2 --peer "$(addr 1)"
start 3 --peer "$(addr 1)"
wait_for 30 "3-node mesh from one seed" full_mesh

kill -KILL "${pid[3]}"
wait "${pid[3]}" 2>/dev/null
t0=$(date +%s%N)
wait_for 15 "node1 and node2 notice that node3 is gone" node3_gone
echo "   noticed after $((($(date +%s%N) - t0) / 1000000)) ms"
grep -q "peer node3 .* lost" "$work/n1/log" || { echo "FAIL: node1 logged no loss of node3" >&2; exit 1; }

# node3 comes back with no seed: only the others' re-dial can reconnect it.
sleep 1
start 3
wait_for 40 "node1 and node2 re-dial node3 after its restart" full_mesh
grep -q "peer node3 (region region3, 127.0.0.42:$port) connected, dialled" "$work/n1/log" "$work/n2/log" ||
  { echo "FAIL: no re-dial of node3 logged" >&2; exit 1; }

# kill -9 and an immediate restart, before anyone notices: node3 keeps its QUIC secret in its
# state dir, so its stateless resets end the dead connections at the others' next packet, and
# its new connections are not refused as duplicates until the old ones idle out (30 s). Where
# node3's new connection comes first and the old one has been silent for 2 s (a slow start, as
# under a sanitizer), the old one is closed as the stale duplicate instead (ADR 0010).
kill -KILL "${pid[3]}"
wait "${pid[3]}" 2>/dev/null
t0=$(date +%s%N)
start 3 --peer "$(addr 1)"
wait_for 10 "node3 back in the mesh right after kill -9 and restart" full_mesh
echo "   back after $((($(date +%s%N) - t0) / 1000000)) ms"
grep -qE "peer node3 .* lost: (stateless reset|duplicate)" "$work/n1/log" "$work/n2/log" ||
  { echo "FAIL: no stateless reset (or stale duplicate) ended a dead connection to node3" >&2; exit 1; }
echo "all passed"

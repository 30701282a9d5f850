#!/usr/bin/env bash
# The HTTP endpoint of a running 3-region mesh (scripts/lib/mesh-setup.sh on 127.0.0.120-129,
# every node with `http` on its own address): /status.json and `tbnode status --json` validate
# against node/status.schema.json; a real Prometheus (Debian's prometheus, started here on
# loopback with its own config and TSDB in a temp dir) scrapes every node each second and its
# HTTP API answers what the nodes know (liar.test falseticker on all three, split.test
# inconsistent, a counter growing); headless Chromium loads the dashboard and its DOM shows the
# verdicts; a screenshot is kept as ARTIFACT_DIR/dashboard.png. The edge refuses what it must
# (POST, long URLs, bad history queries). Everything started is stopped on any exit.
#
#   test_http_mesh.sh BIN_DIR ARTIFACT_DIR
set -uo pipefail
bin=${1:?usage: test_http_mesh.sh BIN_DIR ARTIFACT_DIR}
art=${2:?usage: test_http_mesh.sh BIN_DIR ARTIFACT_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/mesh-setup.sh
source "$root/scripts/lib/mesh-setup.sh"
PY=/usr/bin/python3 # Debian's, with python3-jsonschema
DEADLINE_S=75

for tool in curl jq chronyd prometheus promtool chromium "$PY"; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not installed (scripts/setup)"; exit 1; }
done
"$PY" -c 'import jsonschema' 2>/dev/null || { echo "FAIL: python3-jsonschema not installed (scripts/setup)"; exit 1; }
prom_pid=""
cleanup() {
  [ -n "$prom_pid" ] && ms_kill "$prom_pid"
  ms_stop
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$(mktemp -d "${TMPDIR:-/tmp}/tb-http.XXXXXX")
export MS_DASHBOARD="$root/dashboard"
ms_init "$work/mesh" "$bin" 120 || exit 1
mkdir -p "$work/mesh" "$art"

nfail=0
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  nfail=$((nfail + 1))
}
url() { echo "http://$(ms_node_ip "$1"):$ms_port$2"; }
get() { curl -sS --max-time 5 "$(url "$1" "$2")"; }
verdict_of() { # node source -> its verdict id on that source (via /status.json)
  get "$1" /status.json 2>/dev/null |
    jq -r --arg h "$2" '[.verdicts[]? | select(.name | startswith($h))][0].verdict // "absent"' 2>/dev/null
}

ms_start || { echo "FAIL: mesh did not start"; exit 1; }
t0=$(date +%s)
ready=0
while [ $(($(date +%s) - t0)) -lt $DEADLINE_S ]; do
  ok=1
  for node in "${MS_NODES[@]}"; do
    [ "$(verdict_of "$node" liar.test)" = falseticker ] || ok=0
    [ "$(verdict_of "$node" split.test)" = inconsistent ] || ok=0
  done
  [ $ok = 1 ] && { ready=1; break; }
  sleep 1
done
if [ $ready = 1 ]; then
  pass "every node's /status.json: liar.test falseticker, split.test inconsistent after $(($(date +%s) - t0)) s"
else
  fail "verdicts not formed within $DEADLINE_S s"
  for node in "${MS_NODES[@]}"; do get "$node" /status.json | jq -c '[.verdicts[]? | [.name, .verdict]]'; done
fi

# --- /status.json and status --json: one answer, valid against the schema ---
for node in "${MS_NODES[@]}"; do
  get "$node" /status.json >"$work/http-$node.json"
  ms_status_json "$node" >"$work/cli-$node.json"
done
if "$PY" - "$root/node/status.schema.json" "$work"/http-*.json "$work"/cli-*.json <<'PYEOF'; then
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
v = jsonschema.Draft202012Validator(schema)
bad = 0
for f in sys.argv[2:]:
    for e in v.iter_errors(json.load(open(f))):
        print(f"{f}: {'/'.join(map(str, e.path))}: {e.message}")
        bad += 1
sys.exit(1 if bad else 0)
PYEOF
  pass "/status.json and status --json of every node validate against node/status.schema.json"
else
  fail "schema validation"
fi
# one object: the same members and the same identity (values move between the two reads)
shape='[keys, .node, .region, .version, (.verdicts | map(.kind + " " + .name) | sort)]'
[ "$(jq -c "$shape" "$work/http-eu.json")" = "$(jq -c "$shape" "$work/cli-eu.json")" ] &&
  pass "/status.json and status --json are the same object" || fail "/status.json differs from status --json"
# us and ap both see the shifted chronyd; either may be between measurements at this moment
if jq -e '.verdicts[] | select(.name | startswith("split.test")) | .regions |
    (map(select(.region == "eu"))[0].agrees == true) and
    (map(select(.region == "us" or .region == "ap") | .agrees == false) | length > 0 and all)' \
  "$work/http-eu.json" >/dev/null; then
  pass "split.test per region: eu agrees with the consensus, us/ap do not"
else
  fail "split.test regions: $(jq -c '.verdicts[] | select(.name | startswith("split.test")) | .regions' "$work/http-eu.json")"
fi
"$bin/tbnode" status --state-dir "$(ms_state eu)" >"$work/status.txt"
grep -q '^bcast ' "$work/status.txt" && fail "status text still lists raw broadcasts" ||
  pass "status text has no raw broadcast lines"
"$bin/tbnode" status --broadcasts --state-dir "$(ms_state eu)" >/dev/null &&
  ! "$bin/tbnode" status --json --broadcasts --state-dir "$(ms_state eu)" 2>/dev/null &&
  pass "status --broadcasts answers; with --json it is refused" || fail "status --broadcasts"
grep -q "^version .* uptime_s " "$work/status.txt" && pass "status text: version and uptime" ||
  fail "status text: no version line"

# every node's signed PEER measurements (every crosscheck.peer_interval, 16 s) reach eu
for _ in $(seq 30); do
  nfrom=$(get eu /status.json | jq '[.peer_matrix[].from] | unique | length')
  [ "${nfrom:-0}" = 3 ] && break
  sleep 1
done
[ "${nfrom:-0}" = 3 ] && pass "peer_matrix on eu: RTT/offset measured by all 3 nodes" ||
  fail "peer_matrix on eu: ${nfrom:-no} measuring nodes"

# --- the edge ---
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
[ "$(code -X POST "$(url eu /metrics)")" = 405 ] && pass "POST refused (405)" || fail "POST not refused"
[ "$(code "$(url eu "/$(head -c 2000 /dev/zero | tr '\0' a)")")" = 414 ] && pass "long URL refused (414)" ||
  fail "long URL not refused"
[ "$(code "$(url eu /nope)")" = 404 ] && pass "unknown path 404" || fail "unknown path not 404"
[ "$(code "$(url eu '/history.json?kind=ntp')")" = 400 ] && pass "history without source 400" ||
  fail "history without source not 400"
[ "$(code "$(url eu '/history.json?kind=ntp&source=x&points=999999')")" = 400 ] &&
  pass "history over the points bound 400" || fail "history points bound not enforced"
src=$(jq -r '.verdicts[] | select(.name | startswith("liar.test")) | .name' "$work/http-eu.json")
np=$(get eu "/history.json?kind=ntp&source=$src&seconds=600" | jq '[.points[] | select(.offset_ns > 1900000000 and .offset_ns < 2100000000)] | length')
[ "${np:-0}" -gt 3 ] && pass "/history.json: $np points of liar.test near +2 s" || fail "/history.json: ${np:-no} points"
[ "$(get eu / | grep -c 'app.js')" -ge 1 ] && pass "/ serves the dashboard" || fail "/ does not serve the dashboard"
m=$(get eu /metrics)
echo "$m" | grep -q '^# TYPE tbnode_source_verdict gauge$' && echo "$m" | grep -q '^tbnode_measurements_sent_total [0-9]' &&
  pass "/metrics: HELP/TYPE and counters" || fail "/metrics malformed"
# promtool (Debian's prometheus package) lints names, units, HELP and counter suffixes
if lint=$(echo "$m" | promtool check metrics 2>&1); then
  pass "/metrics: promtool check metrics finds nothing"
else
  fail "/metrics: promtool check metrics: $lint"
fi

# --- Prometheus ---
pport=$((ms_port + 3))
cat >"$work/prometheus.yml" <<EOF2
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: tbnode
    static_configs:
      - targets: ['$(ms_node_ip eu):$ms_port', '$(ms_node_ip us):$ms_port', '$(ms_node_ip ap):$ms_port']
EOF2
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$pport" >"$work/prometheus.log" 2>&1 &
prom_pid=$!
promq() { # query -> the result vector as JSON
  curl -sS --max-time 5 --data-urlencode "query=$1" "http://127.0.0.1:$pport/api/v1/query" | jq -c '.data.result'
}
q_liar='tbnode_source_verdict{source=~"liar.test.*",verdict="falseticker"} == 1'
got=0
for _ in $(seq 30); do
  got=$(promq "$q_liar" 2>/dev/null | jq 'length' 2>/dev/null)
  [ "${got:-0}" = 3 ] && break
  sleep 1
done
[ "${got:-0}" = 3 ] && pass "prometheus: $q_liar -> 3 series (every node)" ||
  fail "prometheus: $q_liar -> ${got:-nothing}; $(tail -3 "$work/prometheus.log")"
q='count(tbnode_source_verdict{source=~"split.test.*",verdict="inconsistent"} == 1)'
[ "$(promq "$q" | jq -r '.[0].value[1]')" = 3 ] && pass "prometheus: $q = 3" || fail "prometheus: $q"
q='tbnode_source_offset_seconds{source=~"liar.test.*",instance="'$(ms_node_ip eu):$ms_port'"} > 1.9'
[ "$(promq "$q" | jq length)" = 3 ] && pass "prometheus: $q -> 3 regions" || fail "prometheus: $q -> $(promq "$q")"
q='count(tbnode_peer_rtt_seconds > 0)'
[ "$(promq "$q" | jq -r '.[0].value[1]')" = 6 ] && pass "prometheus: $q = 6" || fail "prometheus: $q -> $(promq "$q")"
q='tbnode_measurements_sent_total{instance="'$(ms_node_ip us):$ms_port'"}'
a=$(promq "$q" | jq -r '.[0].value[1]')
sleep 3
b=$(promq "$q" | jq -r '.[0].value[1]')
[ -n "$a" ] && [ "$a" != null ] && [ "${b%.*}" -gt "${a%.*}" ] 2>/dev/null &&
  pass "prometheus: $q grows ($a -> $b)" || fail "prometheus: $q did not grow ($a -> $b)"
q='tbnode_source_verdict_change_time_seconds{source=~"liar.test.*"} < time() > time() - 600'
[ "$(promq "$q" | jq length)" = 3 ] && pass "prometheus: $q -> 3 series" || fail "prometheus: $q -> $(promq "$q")"
q='tbnode_http_requests_total{result="refused",instance="'$(ms_node_ip eu):$ms_port'"} >= 2'
[ "$(promq "$q" | jq length)" = 1 ] && pass "prometheus: $q" || fail "prometheus: $q"
q='tbnode_certificate_expiry_time_seconds{node="eu"} > time()'
[ "$(promq "$q" | jq length)" -ge 1 ] && pass "prometheus: $q" || fail "prometheus: $q"

# --- the dashboard in headless Chromium ---
chrome() {
  timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions \
    --user-data-dir="$work/chromium" --virtual-time-budget=8000 "$@" 2>>"$work/chromium.log"
}
chrome --dump-dom "$(url eu /)" >"$work/dom.html"
liar_cells=$(grep -o '<td class="cell v-falseticker[^"]*" data-region="[a-z]*" data-verdict="falseticker"' "$work/dom.html" | wc -l)
split_cells=$(grep -o 'data-verdict="inconsistent"' "$work/dom.html" | wc -l)
grep -q 'data-loaded=' "$work/dom.html" && pass "dashboard loaded (data-loaded set)" ||
  fail "dashboard did not load: $(head -c 300 "$work/dom.html")"
[ "$liar_cells" = 3 ] && pass "dashboard matrix: liar.test falseticker in 3 region cells" ||
  fail "dashboard matrix: $liar_cells falseticker cells"
[ "$split_cells" -ge 4 ] && grep -q 'class="cell v-inconsistent miss"' "$work/dom.html" &&
  pass "dashboard matrix: split.test inconsistent, a region marked as missing the consensus" ||
  fail "dashboard matrix: split.test ($split_cells cells)"
npm=$(grep -o '<td class="cell" data-from="[a-z]*" data-to="[a-z]*" title="[0-9]* s old">[0-9.]* ms / ' "$work/dom.html" | wc -l)
[ "$npm" = 6 ] && pass "dashboard: peer matrix, 6 measured pairs" || fail "dashboard: peer matrix has $npm pairs"
grep -q 'data-points="[1-9]' "$work/dom.html" && pass "dashboard: offset charts drawn from /history.json" ||
  fail "dashboard: no chart points"
grep -q 'class="ev" data-source="liar.test[^"]*"><li>[a-z]*:[0-9]' "$work/dom.html" &&
  pass "dashboard: evidence list for liar.test" || fail "dashboard: no evidence list"
grep -q '<p class="export">export: <code>tbnode evidence export --state-dir [^<]* --verdict ntp/liar.test:[0-9]*</code>' "$work/dom.html" &&
  pass "dashboard: the export command beside the evidence list" || fail "dashboard: no export command"
get eu /metrics >"$work/metrics-eu.txt"
grep -q '^tbnode_source_verdict_evidence_info{kind="ntp",source="liar.test:[0-9]*",export="tbnode evidence export --state-dir [^"]* --verdict ntp/liar.test:[0-9]*"} 1$' "$work/metrics-eu.txt" &&
  pass "/metrics links the liar.test verdict to its evidence" || fail "/metrics: no tbnode_source_verdict_evidence_info for liar.test"
rm -f "$art/dashboard.png"
(cd "$work" && chrome --window-size=1280,1600 --screenshot="$art/dashboard.png" "$(url eu /)" >/dev/null)
[ -s "$art/dashboard.png" ] && pass "screenshot kept: $art/dashboard.png" || fail "no screenshot"

[ $nfail = 0 ] || { echo "$nfail check(s) failed"; exit 1; }
echo "all passed"

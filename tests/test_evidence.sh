#!/usr/bin/env bash
# Evidence an auditor checks offline (issue 13): on a running 3-region mesh
# (scripts/lib/mesh-setup.sh on 127.0.0.160-169), `tbnode evidence export` takes the bundle
# behind eu's verdicts (through the command its status names, and by ORIGIN:SEQ), and
# `tbnode evidence verify --ca` accepts it with every node stopped; then each tampering makes it
# fail naming the item: a flipped signature byte, a swapped certificate, another CA, a revoked
# certificate (--crl), a changed claim, a changed raw response, a file that is not a bundle.
#
#   test_evidence.sh BIN_DIR
set -uo pipefail
bin=${1:?usage: test_evidence.sh BIN_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/mesh-setup.sh
source "$root/scripts/lib/mesh-setup.sh"
PY=/usr/bin/python3
DEADLINE_S=75

for tool in jq chronyd "$PY"; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not installed (scripts/setup)"; exit 1; }
done
cleanup() {
  ms_stop
  [ -n "${work:-}" ] && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
work=$(mktemp -d "${TMPDIR:-/tmp}/tb-evidence.XXXXXX")
ms_init "$work/mesh" "$bin" 160 || exit 1

nfail=0
pass() { echo "PASS: $*"; }
fail() {
  echo "FAIL: $*"
  nfail=$((nfail + 1))
}
tbnode() { "$bin/tbnode" "$@"; }
status() { ms_status_json eu >"$work/status.json" 2>/dev/null; }
# the verdict object on source NAME (configured as NAME:PORT) in the saved status
verdict() { jq -c --arg k "$1" --arg h "$2" '[.verdicts[]? | select(.kind == $k and (.name | startswith($h)))][0] // empty' "$work/status.json"; }

ms_start || { echo "FAIL: mesh did not start"; exit 1; }
t0=$(date +%s)
ready=0
# Wait until eu judges liar.test on measurements of more than one origin, and rt.test.
while [ $(($(date +%s) - t0)) -lt $DEADLINE_S ]; do
  status
  liar=$(verdict ntp liar.test)
  rt=$(verdict roughtime rt.test)
  if [ "$(jq -r '.verdict // ""' <<<"$liar")" = falseticker ] &&
    [ "$(jq '[.evidence[].origin] | unique | length' <<<"$liar" 2>/dev/null)" -ge 2 ] &&
    [ "$(jq '.evidence | length' <<<"$rt" 2>/dev/null || echo 0)" -ge 1 ]; then
    ready=1
    break
  fi
  sleep 1
done
[ $ready = 1 ] && pass "eu: liar.test falseticker on measurements of several origins, rt.test judged, after $(($(date +%s) - t0)) s" ||
  { fail "verdicts not formed within $DEADLINE_S s: $(jq -c '[.verdicts[]? | [.name, .verdict, (.evidence | length)]]' "$work/status.json")"; exit 1; }

# --- export: the command status names for the verdict, and by ORIGIN:SEQ ---
cmd=$(jq -r .evidence_export <<<"$liar")
case "$cmd" in
"tbnode evidence export --state-dir $(ms_state eu) --verdict ntp/liar.test:"*) pass "status links the verdict to its evidence: $cmd" ;;
*) fail "status evidence_export: '$cmd'" ;;
esac
# shellcheck disable=SC2086 # the command's words, as status gives them
if tbnode ${cmd#tbnode } --out "$work/liar.json" 2>"$work/err"; then
  pass "exported the evidence behind liar.test ($(wc -c <"$work/liar.json") bytes)"
else
  fail "export --verdict: $(cat "$work/err")"
fi
rtcmd=$(jq -r .evidence_export <<<"$rt")
# shellcheck disable=SC2086
tbnode ${rtcmd#tbnode } --out "$work/rt.json" 2>"$work/err" || fail "export rt.test: $(cat "$work/err")"
refs=$(jq -r '[.evidence[] | "\(.origin):\(.seq)"] | join(" ")' <<<"$liar")
# shellcheck disable=SC2086
tbnode evidence export --state-dir "$(ms_state eu)" $refs >"$work/refs.json" 2>"$work/err" ||
  fail "export $refs: $(cat "$work/err")"
tbnode evidence export --state-dir "$(ms_state eu)" eu:999999999 >/dev/null 2>"$work/err" &&
  fail "export of a measurement that is not stored succeeded"
grep -q "eu:999999999: not in the store" "$work/err" && pass "export names a measurement it does not have" ||
  fail "export of a missing measurement: $(cat "$work/err")"
tbnode evidence export --state-dir "$(ms_state eu)" --verdict no.such.source >/dev/null 2>"$work/err" &&
  fail "export for a source without a verdict succeeded"
cp "$work/mesh/ca/ca.crt" "$work/ca.crt"
cp -r "$work/mesh/ca" "$work/ca-copy"

# --- verify with every node stopped ---
ms_kill "${ms_pids[@]}"
ms_pids=()
expect() { # want-exit name file args... : runs verify, keeps its output in $work/v
  local want=$1 name=$2
  shift 2
  tbnode evidence verify "$@" >"$work/v" 2>&1
  local rc=$?
  [ $rc -eq "$want" ] || { fail "$name: exit $rc, want $want: $(cat "$work/v")"; return 1; }
}
if expect 0 "verify liar.test" "$work/liar.json" --ca "$work/ca.crt"; then
  n=$(jq '.measurements | length' "$work/liar.json")
  grep -q "^ok     ca: " "$work/v" && grep -q "^ok     certificate eu: " "$work/v" &&
    [ "$(grep -c '^ok     measurement ' "$work/v")" -eq "$n" ] &&
    grep -q "^ok     verdict ntp liar.test:.*: falseticker" "$work/v" &&
    grep -q "NTP packets re-checked: offset .* recomputed" "$work/v" &&
    ! grep -q FAILED "$work/v" &&
    pass "verify: the liar.test bundle holds ($n measurements, $(jq '.certificates | length' "$work/liar.json") certificates)" ||
    fail "verify liar.test output: $(cat "$work/v")"
  sed 's/^/    /' "$work/v"
fi
expect 0 "verify rt.test" "$work/rt.json" --ca "$work/ca.crt" &&
  { grep -q "Roughtime response verified for the server's key: offset .* recomputed from MIDP" "$work/v" &&
    pass "verify: the rt.test bundle holds (Roughtime responses re-verified)" ||
    fail "verify rt.test output: $(cat "$work/v")"; }
expect 0 "verify ORIGIN:SEQ export" "$work/refs.json" --ca "$work/ca.crt" && pass "verify: the ORIGIN:SEQ bundle holds"

# --- tampering ---
# tamper NAME PYTHON: a copy of liar.json changed by the python code (b: the bundle)
tamper() {
  "$PY" - "$work/liar.json" "$work/$1.json" "$2" <<'PYEOF'
import base64, json, sys
b = json.load(open(sys.argv[1]))
def d(s): return bytearray(base64.b64decode(s))
def e(x): return base64.b64encode(bytes(x)).decode()
exec(sys.argv[3])
json.dump(b, open(sys.argv[2], "w"), indent=1)
PYEOF
}
item=$(jq -r '.measurements[1] | "\(.origin):\(.seq)"' "$work/liar.json")
tamper sig 'm = b["measurements"][1]; s = d(m["sig"]); s[7] ^= 1; m["sig"] = e(s)'
expect 1 "flipped signature byte" "$work/sig.json" --ca "$work/ca.crt" &&
  { grep -q "^FAILED measurement $item: the signature does not verify" "$work/v" &&
    [ "$(grep -c FAILED "$work/v")" -eq 2 ] && grep -q "^FAILED verdict ntp liar.test" "$work/v" &&
    pass "a flipped signature byte fails measurement $item (and the verdict that cites it)" ||
    fail "flipped signature: $(cat "$work/v")"; }
other=$(jq -r '[.certificates[] | select(.origin != "eu")][0].origin' "$work/liar.json")
tamper swap "c = b['certificates']; i = [x['origin'] for x in c].index('eu'); j = [x['origin'] for x in c].index('$other'); c[i]['der'] = c[j]['der']"
expect 1 "swapped certificate" "$work/swap.json" --ca "$work/ca.crt" &&
  { grep -q "^FAILED certificate eu: names node $other, not eu" "$work/v" &&
    grep -q "^FAILED measurement eu:[0-9]*: no verified certificate of its origin" "$work/v" &&
    pass "a swapped certificate fails certificate eu and eu's measurements" ||
    fail "swapped certificate: $(cat "$work/v")"; }
"$bin/tbcert" init-ca --dir "$work/other-ca" --name other-mesh >/dev/null
expect 1 "another CA" "$work/liar.json" --ca "$work/other-ca/ca.crt" &&
  { grep -q "^FAILED ca: the bundle's CA (mesh accept-mesh) is not the trusted CA (mesh other-mesh)" "$work/v" &&
    grep -q "^FAILED certificate eu: does not chain to the trusted CA" "$work/v" &&
    ! grep -q "^ok     measurement" "$work/v" &&
    pass "another CA fails the CA, every certificate and every measurement" ||
    fail "another CA: $(cat "$work/v")"; }
"$bin/tbcert" issue --ca "$work/other-ca" --name eu --region eu --key-type ed25519 --out "$work/fake-eu" >/dev/null
fake=$(grep -v -- ----- "$work/fake-eu/node.crt" | tr -d '\n')
tamper foreign "c = b['certificates']; c[[x['origin'] for x in c].index('eu')]['der'] = '$fake'"
expect 1 "eu's certificate from another CA" "$work/foreign.json" --ca "$work/ca.crt" &&
  { grep -q "^FAILED certificate eu: does not chain to the trusted CA at .*: not issued by" "$work/v" &&
    pass "a certificate for eu from another CA fails: $(grep '^FAILED certificate eu' "$work/v")" ||
    fail "foreign certificate: $(cat "$work/v")"; }
"$bin/tbcert" revoke --ca "$work/ca-copy" --cert "$work/mesh/eu/node.crt" >/dev/null 2>&1 ||
  "$bin/tbcert" revoke --ca "$work/ca-copy" --cert "$work/mesh/eu/node.crt"
expect 1 "revoked certificate" "$work/liar.json" --ca "$work/ca.crt" --crl "$work/ca-copy/revoked.crl" &&
  { grep -q "^FAILED certificate eu: revoked" "$work/v" &&
    pass "with --crl, eu's revoked certificate fails" || fail "revoked: $(cat "$work/v")"; }
item0=$(jq -r '.measurements[0] | "\(.origin):\(.seq)"' "$work/liar.json")
tamper claim 'b["measurements"][0]["offset_ns"] += 1000'
expect 1 "changed claim" "$work/claim.json" --ca "$work/ca.crt" &&
  { grep -q "^FAILED measurement $item0: the bundle's offset_ns is not the signed body's" "$work/v" &&
    pass "a changed offset beside the body fails measurement $item0" || fail "changed claim: $(cat "$work/v")"; }
tamper resp 'm = b["measurements"][0]; r = d(m["response"]); r[47] ^= 1; m["response"] = e(r)'
expect 1 "changed raw response" "$work/resp.json" --ca "$work/ca.crt" &&
  { grep -q "^FAILED measurement $item0: signature ok; the request or response beside the body is not the signed evidence" "$work/v" &&
    pass "a changed raw response fails measurement $item0" || fail "changed response: $(cat "$work/v")"; }
tamper body 'm = b["measurements"][0]; x = d(m["body"]); x[-1] ^= 1; m["body"] = e(x)'
expect 1 "changed signed body" "$work/body.json" --ca "$work/ca.crt" &&
  { grep -q "^FAILED measurement $item0: the signature does not verify" "$work/v" &&
    pass "a changed byte of a signed body fails measurement $item0" || fail "changed body: $(cat "$work/v")"; }
printf '{"format": "tbnode-evidence", "version": 1, "ca": "!!"}' >"$work/junk.json"
expect 1 "not a bundle" "$work/junk.json" --ca "$work/ca.crt" &&
  { grep -q "^FAILED bundle: .*: ca: not 1 to [0-9]* bytes of base64" "$work/v" &&
    pass "a broken bundle is refused naming the field" || fail "junk: $(cat "$work/v")"; }
expect 2 "verify without --ca" "$work/liar.json"

echo "$nfail failure(s)"
[ $nfail -eq 0 ]

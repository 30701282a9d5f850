#!/usr/bin/env bash
# HTTP/3 for operators on the mesh port (adr/0013, http/h3.h) against a real tbnode on
# 127.0.0.150: an operator certificate (tbcert issue --role operator) gets /status.json and
# /metrics from Debian's gtlsclient (ngtcp2's example client, ALPN h3) and from `tbnode status
# --remote` (text and JSON); a node certificate or no certificate is refused in the handshake
# with a TLS alert (bad_certificate 42 = QUIC 0x12a, certificate_required 116 = 0x174), and no
# answer is given; an operator certificate is no mesh member (a second tbnode cannot run on
# it, and the node's mesh keeps working beside h3); a burst of requests on one connection
# meets the budget (429), a 9th connection the connection cap (H3_EXCESSIVE_LOAD).
#
#   test_h3.sh BIN_DIR
set -u
bin=${1:?usage: test_h3.sh BIN_DIR}
command -v gtlsclient >/dev/null || { echo "FAIL: gtlsclient not installed (ngtcp2-client, scripts/setup)"; exit 1; }
command -v jq >/dev/null || { echo "FAIL: jq not installed (scripts/setup)"; exit 1; }
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
pass() { echo "PASS: $*"; }
ip=127.0.0.150
port=4650

"$bin/tbcert" init-ca --dir "$work/ca" --name ops >/dev/null || exit 1
"$bin/tbcert" issue --ca "$work/ca" --name n1 --region eu --ip $ip --out "$work/n1" >/dev/null || exit 1
out=$("$bin/tbcert" issue --ca "$work/ca" --role operator --name alice --out "$work/op") || exit 1
[ "$out" = "wrote $work/op/{operator.key,operator.crt,ca.crt}: operator alice, ed25519 key, valid until $(echo "$out" | sed 's/.*until //')" ] ||
  fail "issue --role operator said: $out"
"$bin/tbcert" show "$work/op/operator.crt" | grep -qx "kind:        operator certificate" ||
  fail "tbcert show does not call it an operator certificate"
"$bin/tbcert" show "$work/op/operator.crt" | grep -qx "SANs:        URI:urn:tbmesh:operator:alice" ||
  fail "operator SANs: $("$bin/tbcert" show "$work/op/operator.crt" | grep SANs)"
openssl verify -CAfile "$work/ca/ca.crt" -purpose sslclient "$work/op/operator.crt" >/dev/null 2>&1 ||
  fail "openssl does not accept the operator certificate for clientAuth"
openssl verify -CAfile "$work/ca/ca.crt" -purpose sslserver "$work/op/operator.crt" >/dev/null 2>&1 &&
  fail "openssl accepts the operator certificate for serverAuth"
"$bin/tbcert" issue --ca "$work/ca" --role operator --name bob --region eu --out "$work/bad" 2>"$work/err" &&
  fail "--role operator took --region"
grep -qx "tbcert: issue: --role operator takes no --region, --ip or --dns" "$work/err" ||
  fail "--role operator --region: $(cat "$work/err")"

# An operator is no mesh member: a node will not even start on its certificate.
"$bin/tbnode" --listen 127.0.0.151:$port --state-dir "$work/s-op" --cert "$work/op/operator.crt" \
  --key "$work/op/operator.key" --ca "$work/op/ca.crt" >"$work/op-node.log" 2>&1 &
oppid=$!
for _ in $(seq 50); do kill -0 $oppid 2>/dev/null || break; sleep 0.1; done
if kill -0 $oppid 2>/dev/null; then
  kill -KILL $oppid
  fail "tbnode runs on an operator certificate"
else
  wait $oppid
  grep -q "operator certificate, not a node's" "$work/op-node.log" ||
    fail "tbnode on an operator certificate: $(tail -2 "$work/op-node.log")"
fi

"$bin/tbnode" --listen $ip:$port --state-dir "$work/s" --log-level debug --cert "$work/n1/node.crt" \
  --key "$work/n1/node.key" --ca "$work/n1/ca.crt" >"$work/node.log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "hybrid endpoint n1" "$work/node.log" && break; sleep 0.1; done

gt() { # name cert-args... -- URI...: gtlsclient's output in $work/gt-NAME, downloads in $work/dl-NAME
  local name=$1
  shift
  mkdir -p "$work/dl-$name"
  timeout 20 gtlsclient --exit-on-all-streams-close --download "$work/dl-$name" "$@" >"$work/gt-$name" 2>&1
}

# --- operator: answers ---
gt op --cert "$work/op/operator.crt" --key "$work/op/operator.key" $ip $port \
  "https://$ip:$port/status.json" "https://$ip:$port/metrics"
if jq -e '.node == "n1" and .region == "eu"' "$work/dl-op/status.json" >/dev/null 2>&1; then
  pass "gtlsclient with an operator certificate: /status.json names n1 in eu"
else
  fail "gtlsclient /status.json: $(head -c 300 "$work/dl-op/status.json" 2>&1); $(grep -i 'close\|error' "$work/gt-op" | tail -3)"
fi
if grep -q "^# TYPE tbnode_" "$work/dl-op/metrics" 2>/dev/null; then
  pass "gtlsclient with an operator certificate: /metrics ($(grep -c '^tbnode_' "$work/dl-op/metrics") series)"
else
  fail "gtlsclient /metrics: $(head -c 300 "$work/dl-op/metrics" 2>&1)"
fi
grep -q "operator alice: GET /status.json -> 200" "$work/node.log" || fail "node log has no h3 request line"

# --- node certificate and no certificate: refused in the handshake ---
gt node --cert "$work/n1/node.crt" --key "$work/n1/node.key" $ip $port "https://$ip:$port/status.json"
if grep -q "CONNECTION_CLOSE(0x1c) error_code=CRYPTO_ERROR(0x12a)" "$work/gt-node" && [ ! -s "$work/dl-node/status.json" ]; then
  pass "gtlsclient with a node certificate: refused, TLS alert bad_certificate (0x12a), no answer"
else
  fail "gtlsclient with a node certificate was not refused: $(grep -i 'close' "$work/gt-node" | tail -2)"
fi
gt none $ip $port "https://$ip:$port/metrics"
if grep -q "CONNECTION_CLOSE(0x1c) error_code=CRYPTO_ERROR(0x174)" "$work/gt-none" && [ ! -s "$work/dl-none/metrics" ]; then
  pass "gtlsclient without a certificate: refused, TLS alert certificate_required (0x174), no answer"
else
  fail "gtlsclient without a certificate was not refused: $(grep -i 'close' "$work/gt-none" | tail -2)"
fi
grep -q "refused peer [0-9.]*:[0-9]*: no node identity (h3 needs an operator certificate" "$work/node.log" ||
  fail "node log does not say why it refused the node certificate on h3"

# --- tbnode status --remote ---
remote() { "$bin/tbnode" status --remote $ip:$port --ca "$work/op/ca.crt" "$@"; }
out=$(remote --cert "$work/op/operator.crt" --key "$work/op/operator.key")
if [ $? -eq 0 ] && [[ $out == "node n1 region eu mode hybrid addr $ip:$port connected 0"* ]]; then
  pass "tbnode status --remote: $(echo "$out" | head -1)"
else
  fail "tbnode status --remote: $out"
fi
remote --cert "$work/op/operator.crt" --key "$work/op/operator.key" --json >"$work/remote.json" &&
  jq -e '.node == "n1" and (.peers | type == "array")' "$work/remote.json" >/dev/null ||
  fail "tbnode status --remote --json: $(head -c 200 "$work/remote.json")"
remote --cert "$work/n1/node.crt" --key "$work/n1/node.key" >"$work/out" 2>"$work/err" &&
  fail "status --remote with a node certificate succeeded"
grep -qx "tbnode: $ip:$port: the node refused the handshake (TLS alert 42): an operator certificate of this mesh is needed" "$work/err" ||
  fail "status --remote with a node certificate: $(cat "$work/err")"
[ -s "$work/out" ] && fail "status --remote with a node certificate printed: $(head -2 "$work/out")"
remote >"$work/out" 2>"$work/err" && fail "status --remote without a certificate succeeded"
grep -qx "tbnode: $ip:$port: the node refused the handshake (TLS alert 116): an operator certificate of this mesh is needed" "$work/err" ||
  fail "status --remote without a certificate: $(cat "$work/err")"
"$bin/tbnode" status --remote $ip:$port --cert "$work/op/operator.crt" 2>"$work/err" && fail "--cert without --key accepted"
grep -q "^tbnode: --remote needs --ca, --cert and --key together" "$work/err" || fail "usage: $(cat "$work/err")"

# --- the budget: 30 requests at once on one connection, 20 answered, the rest 429 ---
gt burst --cert "$work/op/operator.crt" --key "$work/op/operator.key" -n 30 $ip $port "https://$ip:$port/nothing"
n404=$(grep -c "^\[:status: 404\]\|:status: 404" "$work/gt-burst")
n429=$(grep -c ":status: 429" "$work/gt-burst")
if [ "$n429" -ge 1 ] && [ $((n404 + n429)) -eq 30 ]; then
  pass "30 requests on one connection: $n404 answered (404), $n429 over the budget (429)"
else
  fail "burst: $n404 answered, $n429 refused: $(grep ':status' "$work/gt-burst" | sort | uniq -c)"
fi

# --- at most 8 h3 connections at once: a 9th is closed with H3_EXCESSIVE_LOAD (0x107) ---
holders=()
base=$(grep -c "h3 connection from alice" "$work/node.log")
for _ in $(seq 8); do
  timeout 20 gtlsclient -q --timeout=15s --cert "$work/op/operator.crt" --key "$work/op/operator.key" \
    $ip $port "https://$ip:$port/status" >/dev/null 2>&1 &
  holders+=($!)
done
for _ in $(seq 100); do
  [ "$(grep -c "h3 connection from alice" "$work/node.log")" -ge $((base + 8)) ] && break
  sleep 0.1
done
gt ninth --cert "$work/op/operator.crt" --key "$work/op/operator.key" $ip $port "https://$ip:$port/status"
if grep -q "CONNECTION_CLOSE(0x1d) error_code=.*(0x107)" "$work/gt-ninth" && [ ! -s "$work/dl-ninth/status" ]; then
  pass "a 9th h3 connection while 8 are open: closed with H3_EXCESSIVE_LOAD (0x107)"
else
  fail "9th h3 connection: $(grep -i 'CONNECTION_CLOSE' "$work/gt-ninth" | tail -2)"
fi
grep -q "h3: alice: refused, 8 h3 connections already" "$work/node.log" || fail "no log line for the 9th"
kill "${holders[@]}" 2>/dev/null
wait "${holders[@]}" 2>/dev/null

kill -0 "$pid" 2>/dev/null || fail "node died: $(tail -3 "$work/node.log")"
kill -TERM "$pid"
wait "$pid" || fail "node exit code $?"
pid=
[ $fails -eq 0 ] && echo "OK: h3"
exit $((fails > 0))

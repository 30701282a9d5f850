#!/usr/bin/env bash
# tbroughtime end to end on loopback (127.0.0.60-62 and .176, own range): keygen and key-file mode,
# queries for each version the server speaks, and a server list whose third server runs under
# faketime 30 s ahead: the chained sequence must catch it and write a malfeasance report.
set -euo pipefail
bin=${1:?usage: test_rt_tool.sh path/to/tbroughtime}
dir=$(mktemp -d)
pids=()
# Each server runs in its own session (setsid), so killing its group ends it whatever it forked.
cleanup() {
  for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # libfaketime leaves its shared memory behind when its process is killed; a later faketime
  # that gets the same PID would then fail with "sem_open: File exists".
  for p in "${pids[@]}"; do rm -f "/dev/shm/faketime_shm_$p" "/dev/shm/sem.faketime_sem_$p"; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for i in 0 1 2; do
  "$bin" keygen --out "$dir/k$i" > "$dir/pk$i"
  [ "$(stat -c %a "$dir/k$i")" = 600 ] || fail "key file mode is not 600"
done
"$bin" keygen --out "$dir/k0" 2>/dev/null && fail "keygen overwrote an existing key"
cp "$dir/k0" "$dir/open" && chmod 644 "$dir/open"
"$bin" serve --key "$dir/open" --listen 127.0.0.60:2002 2>"$dir/open.log" && fail "served a 0644 key"
grep -q "chmod 600" "$dir/open.log" || fail "no reason given for refusing the 0644 key"

setsid "$bin" serve --key "$dir/k0" --listen 127.0.0.60:2002 2>"$dir/s0.log" & pids+=($!)
setsid "$bin" serve --key "$dir/k1" --listen 127.0.0.61:2002 --threads 2 --max-batch 8 --tcp 2>"$dir/s1.log" & pids+=($!)
# libfaketime is preloaded directly, so the PID we kill is the one that named its shared memory.
# An ASan build must tolerate libfaketime being preloaded ahead of its runtime.
libfaketime=$(ls /usr/lib/*/faketime/libfaketime.so.1 | head -1)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 FAKETIME_DONT_FAKE_MONOTONIC=1 \
  LD_PRELOAD=$libfaketime FAKETIME='+30s' setsid "$bin" serve --key "$dir/k2" --listen 127.0.0.62:2002 2>"$dir/s2.log" & pids+=($!)
for i in $(seq 50); do
  n=$(cat "$dir"/s[012].log | grep -c "serving on" || true)
  [ "$n" -ge 4 ] && break   # s1 has two threads
  sleep 0.1
done

for v in 1 draft12 all; do
  out=$("$bin" query --server 127.0.0.60:2002 --pubkey "$(cat "$dir/pk0")" --version $v)
  echo "$out"
  echo "$out" | grep -q "verdict valid" || fail "query --version $v"
done
out=$("$bin" query --server 127.0.0.61:2002 --pubkey "$(cat "$dir/pk1")")
echo "$out" | grep -q "version RFC 10049" || fail "threaded server"
# TCP beside UDP on the same port (--tcp), RFC framing; a port without TCP refuses at once.
out=$("$bin" query --server tcp://127.0.0.61:2002 --pubkey "$(cat "$dir/pk1")")
echo "$out"
echo "$out" | grep -q "verdict valid" || fail "query over TCP"
grep -q "UDP and TCP" "$dir/s1.log" || fail "TCP not announced"
out=$("$bin" query --server tcp://127.0.0.60:2002 --pubkey "$(cat "$dir/pk0")" || true)
echo "$out" | grep -q "REJECTED: nothing listening there (connection refused)" || fail "TCP refused"
# The wrong key: SRV names a key the server does not hold, so it stays silent; a request
# without SRV then shows the server answers, with another key.
out=$("$bin" query --server 127.0.0.60:2002 --pubkey "$(cat "$dir/pk1")" || true)
echo "$out"
echo "$out" | grep -q "REJECTED: wrong public key" || fail "wrong key not named"
# Nothing listening: the ICMP port unreachable ends it at once, with its own message.
start=$(date +%s%N)
out=$("$bin" query --server 127.0.0.60:2003 --pubkey "$(cat "$dir/pk0")" || true)
echo "$out"
echo "$out" | grep -q "REJECTED: nothing listening there (connection refused)" || fail "refused port"
[ $(( ($(date +%s%N) - start) / 1000000 )) -lt 3000 ] || fail "refused port waited for an answer"
out=$("$bin" query --server no-such-host.invalid:2002 --pubkey "$(cat "$dir/pk0")" || true)
echo "$out"
echo "$out" | grep -q 'REJECTED: cannot resolve "no-such-host.invalid"' || fail "unresolvable name"

list() {
  printf '{"servers":['
  local sep=""
  for i in "$@"; do
    printf '%s{"name":"s%s","version":1,"publicKeyType":"ed25519","publicKey":"%s",' \
      "$sep" "$i" "$(cat "$dir/pk$i")"
    printf '"addresses":[{"protocol":"udp","address":"127.0.0.6%s:2002"}]}' "$i"
    sep=","
  done
  printf ']}\n'
}
list 0 1 > "$dir/honest.json"
list 0 1 2 > "$dir/liar.json"
"$bin" query --servers "$dir/honest.json" --report "$dir/none.json" || fail "honest sequence"
[ ! -e "$dir/none.json" ] || fail "report written for an honest sequence"
rc=0
"$bin" query --servers "$dir/liar.json" --report "$dir/report.json" || rc=$?
[ "$rc" = 2 ] || fail "liar not caught (exit $rc)"
[ -s "$dir/report.json" ] || fail "no malfeasance report"
python3 - "$dir/report.json" "$(cat "$dir/pk2")" <<'PY'
import base64, json, sys
r = json.load(open(sys.argv[1]))["responses"]
assert len(r) == 6, len(r)
assert "rand" not in r[0] and all("rand" in x for x in r[1:])
assert r[2]["publicKey"] == sys.argv[2]
for x in r:
    assert base64.b64decode(x["request"])[:8] == b"ROUGHTIM"
    assert base64.b64decode(x["response"])[:8] == b"ROUGHTIM"
print("report ok:", len(r), "responses")
PY
# Lists as published: version as a number, a name or absent; every address tried in turn; an
# unusable entry skipped with a warning; a server that does not answer reported, the sequence
# still built over the others.
pk() { cat "$dir/pk$1"; }
entry() { # name version-json-or-empty key addresses...
  local name=$1 ver=$2 key=$3 sep="" a
  shift 3
  printf '{"name":"%s",%s"publicKeyType":"ed25519","publicKey":"%s","addresses":[' \
    "$name" "${ver:+\"version\":$ver,}" "$key"
  for a in "$@"; do printf '%s{"protocol":"udp","address":"%s"}' "$sep" "$a"; sep=","; done
  printf ']}'
}
{
  printf '{"servers":['
  entry num 1 "$(pk 0)" 127.0.0.60:2002; printf ,
  entry ietf '"IETF-Roughtime"' "$(pk 1)" 127.0.0.61:2009 127.0.0.61:2002; printf ,
  entry none "" "$(pk 0)" 127.0.0.60:2002; printf ,
  entry google 3000600613 "$(pk 1)" 127.0.0.63:2002; printf ,
  entry cf-google '"Google-Roughtime"' "$(pk 1)" 127.0.0.63:2002; printf ,
  entry draft5 2147483653 "$(pk 1)" 127.0.0.61:2002; printf ,
  entry badkey 1 AAAA 127.0.0.61:2002
  printf ']}\n'
} > "$dir/forms.json"
rc=0
out=$("$bin" query --servers "$dir/forms.json" --report "$dir/forms-report.json" 2>"$dir/forms.err") || rc=$?
echo "$out"; cat "$dir/forms.err"
[ "$rc" = 1 ] || fail "list with unanswered servers: exit $rc, want 1"
grep -q 'servers\[5\] "draft5" skipped: version 2147483653 not supported' "$dir/forms.err" || fail "draft5 not skipped"
grep -q 'servers\[6\] "badkey" skipped: publicKey' "$dir/forms.err" || fail "badkey not skipped"
grep "not supported" "$dir/forms.err" | grep -q 3000600613 && fail "3000600613 refused"
grep -q "ietf: 127.0.0.61:2009: nothing listening there (connection refused); trying 127.0.0.61:2002" \
  "$dir/forms.err" || fail "no fallback to the second address"
[ "$(echo "$out" | grep -c "verdict valid")" = 6 ] || fail "num, ietf, none: two valid answers each"
echo "$out" | grep -q "^google: REJECTED: nothing listening" || fail "google server not reported"
echo "$out" | grep -q "^unanswered: google (2 of 2 queries)" || fail "unanswered google not listed"
echo "$out" | grep -q "^unanswered: cf-google (2 of 2 queries)" || fail "unanswered cf-google not listed"
echo "$out" | grep -q "^sequence: 6 responses consistent" || fail "no sequence over the answers"
# A "tcp" address is asked over TCP (s1 serves both); a dead TCP address falls back to the next.
tcp_entry() { # name key proto:address...
  local name=$1 key=$2 sep="" a
  shift 2
  printf '{"name":"%s","version":1,"publicKeyType":"ed25519","publicKey":"%s","addresses":[' \
    "$name" "$key"
  for a in "$@"; do printf '%s{"protocol":"%s","address":"%s"}' "$sep" "${a%%:*}" "${a#*:}"; sep=","; done
  printf ']}'
}
{
  printf '{"servers":['
  tcp_entry tcp1 "$(pk 1)" tcp:127.0.0.61:2002; printf ,
  tcp_entry tcp0 "$(pk 0)" tcp:127.0.0.60:2002 udp:127.0.0.60:2002
  printf ']}\n'
} > "$dir/tcp.json"
out=$("$bin" query --servers "$dir/tcp.json" --report "$dir/tcp-report.json" 2>"$dir/tcp.err") ||
  fail "list with TCP addresses"
echo "$out"; cat "$dir/tcp.err"
[ "$(echo "$out" | grep -c "verdict valid")" = 4 ] || fail "tcp list: two valid answers each"
grep -q "tcp0: tcp://127.0.0.60:2002: .*; trying 127.0.0.60:2002" "$dir/tcp.err" ||
  fail "no fallback from a dead TCP address"
# The liar is still caught when a dead server sits between the honest ones.
{
  printf '{"servers":['
  entry s0 1 "$(pk 0)" 127.0.0.60:2002; printf ,
  entry dead 1 "$(pk 1)" 127.0.0.60:2004; printf ,
  entry s1 1 "$(pk 1)" 127.0.0.61:2002; printf ,
  entry s2 1 "$(pk 2)" 127.0.0.62:2002
  printf ']}\n'
} > "$dir/dead.json"
rc=0
out=$("$bin" query --servers "$dir/dead.json" --report "$dir/dead-report.json") || rc=$?
echo "$out"
[ "$rc" = 2 ] || fail "liar behind a dead server not caught (exit $rc)"
python3 - "$dir/dead-report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["responses"]
assert len(r) == 6, len(r)
assert "rand" not in r[0] and all("rand" in x for x in r[1:])
print("report ok over the answering servers:", len(r), "responses")
PY

# Options: --help, --version, unknown or misspelt options, numbers checked.
"$bin" --help > "$dir/help" || fail "--help exit"
grep -q "usage: tbroughtime keygen" "$dir/help" || fail "--help on stdout"
"$bin" serve --help | grep -q "tbroughtime serve" || fail "serve --help"
[ "$("$bin" --version)" = "tbroughtime ${TB_VERSION:-0.1.0}" ] || fail "--version: $("$bin" --version)"
usage() { # expected-message args...
  local want=$1 rc=0
  shift
  "$bin" "$@" >/dev/null 2>"$dir/usage.err" || rc=$?
  [ "$rc" = 2 ] || fail "$* exited $rc, want 2"
  grep -qF -- "$want" "$dir/usage.err" || fail "$*: no \"$want\" in $(cat "$dir/usage.err")"
}
usage "unknown option --servr" query --servr x.json
usage "unknown option --bogus" serve --key "$dir/k0" --bogus
usage "unknown option -x" keygen -x
usage "option --out needs a value" keygen --out
usage "unexpected argument \"extra\"" keygen --out "$dir/kx" extra
usage "--max-batch: '12x' is not a whole number" serve --key "$dir/k0" --max-batch 12x
usage '--max-batch: 129 is outside 1..128' serve --key "$dir/k0" --max-batch 129
usage '--threads: 0 is outside 1..64' serve --key "$dir/k0" --threads 0
usage "--radius: '-1' is not a whole number" serve --key "$dir/k0" --radius -1
usage "--flush-interval-us: ' 5' is not a whole number" serve --key "$dir/k0" --flush-interval-us " 5"
usage '--radius: 99999999999999999999999 is outside 1..86400' serve --key "$dir/k0" --radius 99999999999999999999999
usage "give either --key, or --cert and --online-key" serve
usage 'unknown --version "4294967297"' query --server 127.0.0.60:2002 --pubkey "$(pk 0)" --version 4294967297
usage 'unknown --version "-2147483647"' query --server 127.0.0.60:2002 --pubkey "$(pk 0)" --version -2147483647
"$bin" query --server 127.0.0.60:2002 --pubkey "$(pk 0)" --version 0x8000000c | grep -q "verdict valid" ||
  fail "--version as a number"
usage 'unknown command "srv"' srv

# The IANA port by default, and the counters logged on the timer.
setsid "$bin" serve --key "$dir/k0" --stats-interval 1 2>"$dir/default.log" & pids+=($!)
for i in $(seq 50); do grep -q "serving on" "$dir/default.log" && break; sleep 0.1; done
grep -q "serving on 127.0.0.1:5319" "$dir/default.log" || fail "default port is not 5319"
"$bin" query --server 127.0.0.1:5319 --pubkey "$(pk 0)" | grep -q "verdict valid" || fail "query on 5319"
for i in $(seq 30); do grep -q "answered 1 in 1 batches" "$dir/default.log" && break; sleep 0.1; done
grep -Eq "roughtime: last [0-9]+ s: received 1, answered 1 in 1 batches, dropped 0" "$dir/default.log" ||
  fail "no stats line: $(cat "$dir/default.log")"

# Offline delegation: the long-term key signs a CERT for an online key; the server holds only
# those two, answers under the long-term public key, and warns that the CERT ends within a day.
"$bin" delegate --key "$dir/k0" --online-key "$dir/on0" --cert "$dir/cert0" --valid-for 3600 |
  grep -q "delegation valid until" || fail "delegate"
grep -q "^pubkey $(pk 0)$" "$dir/cert0" || fail "CERT file names the long-term key"
setsid "$bin" serve --cert "$dir/cert0" --online-key "$dir/on0" --listen 127.0.0.176:2002 \
  2>"$dir/deleg.log" & pids+=($!)
for i in $(seq 50); do grep -q "serving on" "$dir/deleg.log" && break; sleep 0.1; done
"$bin" query --server 127.0.0.176:2002 --pubkey "$(pk 0)" | grep -q "verdict valid" ||
  fail "query a server with an offline delegation"
grep -q "the delegation (CERT) expires at .*, in 1.0 h" "$dir/deleg.log" || fail "no expiry warning: $(cat "$dir/deleg.log")"
# An expired one is refused at start, naming the file and the time; so is a CERT for another key.
"$bin" delegate --key "$dir/k0" --online-key "$dir/on1" --cert "$dir/cert1" \
  --not-before $(( $(date +%s) - 7200 )) --valid-for 3600 >/dev/null || fail "delegate (old)"
out=$("$bin" serve --cert "$dir/cert1" --online-key "$dir/on1" --listen 127.0.0.176:2003 2>&1) &&
  fail "served an expired delegation"
echo "$out" | grep -q "cert1: the delegation expired at .*; refusing to serve" || fail "expired: $out"
out=$("$bin" serve --cert "$dir/cert0" --online-key "$dir/on1" --listen 127.0.0.176:2003 2>&1) &&
  fail "served a CERT for another key"
echo "$out" | grep -q "does not delegate this online key" || fail "mismatch: $out"
"$bin" serve --key "$dir/k0" --cert "$dir/cert0" --online-key "$dir/on0" 2>/dev/null &&
  fail "--key with --cert"

kill -TERM "${pids[0]}"; wait "${pids[0]}" || fail "server exit status"
grep -q "answered" "$dir/s0.log" || fail "no stats at shutdown"
echo "PASS"

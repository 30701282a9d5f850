#!/usr/bin/env bash
# tbroughtime end to end on loopback (127.0.0.60-62, own range): keygen and key-file mode,
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
setsid "$bin" serve --key "$dir/k1" --listen 127.0.0.61:2002 --threads 2 --max-batch 8 2>"$dir/s1.log" & pids+=($!)
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
# The wrong key: SRV names a key the server does not hold, so it stays silent.
out=$("$bin" query --server 127.0.0.60:2002 --pubkey "$(cat "$dir/pk1")" || true)
echo "$out"
echo "$out" | grep -q "REJECTED" || fail "wrong key accepted"

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
kill -TERM "${pids[0]}"; wait "${pids[0]}" || fail "server exit status"
grep -q "answered" "$dir/s0.log" || fail "no stats at shutdown"
echo "PASS"

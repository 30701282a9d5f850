#!/usr/bin/env bash
# tbnode's command line: help, version, bad flags and bad config (exit 2, key named), and a
# clean stop on SIGINT and SIGTERM within 2 s.
set -u
tbnode=${1:?usage: test_tbnode_cli.sh PATH/TO/tbnode}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

expect_exit() { # want_status description command...
  local want=$1 what=$2
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  [ "$got" -eq "$want" ] || fail "$what: exit $got, want $want ($(head -c 300 "$work/err"))"
}

expect_exit 0 "--help" "$tbnode" --help
grep -q -- "--listen A:P" "$work/out" || fail "--help does not document --listen"
grep -q "default 0.0.0.0:4433" "$work/out" || fail "--help does not give the listen default"
expect_exit 0 "--version" "$tbnode" --version
grep -q "^tbnode [0-9]" "$work/out" || fail "--version prints '$(cat "$work/out")'"

expect_exit 2 "unknown flag" "$tbnode" --frobnicate
grep -q "unknown option '--frobnicate'" "$work/err" || fail "unknown flag: $(cat "$work/err")"
expect_exit 2 "bad --mode" "$tbnode" --mode both
expect_exit 2 "bad --listen" "$tbnode" --listen 127.0.0.1
grep -q "^tbnode: --listen: " "$work/err" || fail "bad --listen: $(cat "$work/err")"

printf 'mode = "hybrid";\n# comment\nlisten = "[::1]4433";\n' >"$work/bad.conf"
expect_exit 2 "bad config value" "$tbnode" --config "$work/bad.conf"
grep -qx "tbnode: $work/bad.conf:3: key 'listen': '\[::1\]4433': missing ':PORT' after '\]'" \
  "$work/err" || fail "bad config message: $(cat "$work/err")"
[ "$(wc -l <"$work/err")" -eq 1 ] || fail "bad config: more than one line"
printf 'lsten = "1.2.3.4:5";\n' >"$work/unk.conf"
expect_exit 2 "unknown config key" "$tbnode" --config "$work/unk.conf"
grep -q "unk.conf:1: key 'lsten': unknown key" "$work/err" || fail "unknown key: $(cat "$work/err")"
expect_exit 2 "missing config" "$tbnode" --config "$work/none.conf"

# Starts tbnode, sends a signal once it is running, expects exit 0 within 2 s.
stop_with() {
  local sig=$1
  local sd="$work/state-$sig"
  "$tbnode" --listen 127.0.0.10:0 --state-dir "$sd" --log-level debug >"$work/run-$sig.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 50); do
    grep -q "starting" "$work/run-$sig.log" && break
    sleep 0.1
  done
  grep -q "starting" "$work/run-$sig.log" || fail "$sig: tbnode did not start: $(cat "$work/run-$sig.log")"
  [ -d "$sd" ] || fail "$sig: state dir not created"
  [ "$(stat -c %a "$sd")" = 700 ] || fail "$sig: state dir mode $(stat -c %a "$sd")"
  local t0=$(date +%s%N)
  kill "-$sig" "$pid"
  local rc=""
  for _ in $(seq 40); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      rc=$?
      break
    fi
    sleep 0.05
  done
  local ms=$((($(date +%s%N) - t0) / 1000000))
  [ -n "$rc" ] || fail "$sig: still running after 2 s"
  [ "${rc:-1}" -eq 0 ] || fail "$sig: exit $rc"
  echo "$sig: exit ${rc:-none} after $ms ms"
}
stop_with INT
stop_with TERM

[ "$fails" -eq 0 ] && echo "all passed" && exit 0
exit 1

#!/usr/bin/env bash
# tbnode's command line: help, version, bad flags and bad config (exit 2, key named),
# check-config, and a clean stop on SIGINT and SIGTERM within 2 s.
set -u
tbnode=${1:?usage: test_tbnode_cli.sh PATH/TO/tbnode}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
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
grep -qE "^tbnode [0-9]+\.[0-9]+\.[0-9]+$" "$work/out" || fail "--version prints '$(cat "$work/out")'"
[ ! -s "$work/err" ] || fail "--help/--version wrote to stderr"

expect_exit 2 "unknown flag" "$tbnode" --frobnicate
grep -qx "tbnode: unknown option '--frobnicate' (see tbnode --help)" "$work/err" ||
  fail "unknown flag: $(cat "$work/err")"
expect_exit 2 "misspelt flag" "$tbnode" --state-dri x
grep -qx "tbnode: unknown option '--state-dri' (see tbnode --help)" "$work/err" ||
  fail "misspelt flag: $(cat "$work/err")"
expect_exit 2 "flag without its value" "$tbnode" --listen
grep -qx "tbnode: option '--listen' needs a value (see tbnode --help)" "$work/err" ||
  fail "flag without its value: $(cat "$work/err")"
[ ! -s "$work/out" ] || fail "a bad flag wrote to stdout"
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
# Numbers: libconfig 1.5 alone reads 4294967297 as 1 and 4294967396 as 100, both in range.
for bad in "max_peers = 4294967297;|max_peers': 4294967297 is outside 1..1024" \
  "ping_interval_ms = 4294967396;|ping_interval_ms': 4294967396 is outside 100..3600000" \
  "max_peers = -1;|max_peers': -1 is outside 1..1024"; do
  printf '# numbers\n%s\n' "${bad%%|*}" >"$work/num.conf"
  expect_exit 2 "bad number ${bad%%|*}" "$tbnode" --config "$work/num.conf"
  grep -qxF "tbnode: $work/num.conf:2: key '${bad#*|}" "$work/err" ||
    fail "bad number ${bad%%|*}: $(cat "$work/err")"
done

# check-config: the whole file, every error, exit 2; warnings and a summary
# when good; and the node itself refuses the same file before it opens anything.
expect_exit 0 "check-config --help" "$tbnode" check-config --help
grep -q "^usage: tbnode check-config FILE" "$work/out" || fail "check-config --help: $(cat "$work/out")"
expect_exit 2 "check-config without a file" "$tbnode" check-config
expect_exit 2 "check-config of a missing file" "$tbnode" check-config "$work/none.conf"
grep -q "^tbnode: $work/none.conf: cannot read the config file" "$work/err" ||
  fail "check-config of a missing file: $(cat "$work/err")"
expect_exit 2 "check-config of a bad mesh key" "$tbnode" check-config "$work/bad.conf"
grep -qx "tbnode: $work/bad.conf:3: key 'listen': '\[::1\]4433': missing ':PORT' after '\]'" \
  "$work/err" || fail "check-config of a bad mesh key: $(cat "$work/err")"
cat >"$work/multi.conf" <<'CONF'
listen = "127.0.0.45:0";
sources = (
  { kind = "ntp"; address = "127.0.0.1:123"; },
  { kind = "ntp"; address = "127.0.0.1:124"; minpoll = 40; }
);
crosscheck = { window = 5; };
roughtime = { listen = "127.0.0.1:5319"; };
CONF
expect_exit 2 "check-config with three bad sections" "$tbnode" check-config "$work/multi.conf"
printf '%s\n' "tbnode: $work/multi.conf:6: key 'crosscheck.window': 5 is outside 10..86400" \
  "tbnode: $work/multi.conf:4: key 'sources.[1].minpoll': 40 is outside -6..17" \
  "tbnode: $work/multi.conf:7: key 'roughtime.key': missing: the long-term key file (tbroughtime keygen --out FILE)" \
  >"$work/want"
diff "$work/want" "$work/err" >/dev/null || fail "check-config with three bad sections: $(cat "$work/err")"
[ ! -s "$work/out" ] || fail "check-config of a bad file printed a summary: $(cat "$work/out")"
expect_exit 2 "start with a bad sources entry" "$tbnode" --config "$work/multi.conf" \
  --state-dir "$work/s-multi"
grep -q "error: $work/multi.conf:4: key 'sources.\[1\].minpoll': 40 is outside" "$work/err" ||
  fail "start with a bad sources entry: $(cat "$work/err")"
[ -e "$work/s-multi" ] && fail "a node with a bad config file created its state directory"
# every error of the whole file, not only each section's first: mesh keys, several per source
# entry and across entries, crosscheck, roughtime; a source listed twice beside bad entries is
# named by its place in the file; an error that only follows from a bad setting is not repeated
: >"$work/rt.key"
cat >"$work/every.conf" <<'CONF'
listen = "127.0.0.45:0";
max_peers = 0;
bogus = 1;
sources = (
  { kind = "ntp"; address = "127.0.0.1:123"; minpoll = 40; maxpoll = 99; },
  { kind = "bad"; },
  { kind = "ntp"; address = "127.0.0.1:124"; },
  { kind = "ntp"; address = "127.0.0.1:125"; count = 0; extra = 1; },
  { kind = "ntp"; address = "127.0.0.1:124"; },
  { kind = "ntp"; address = 126; }
);
crosscheck = { window = 5; min_agree = 0; };
roughtime = { listen = "127.0.0.1:5319"; key = "rt.key"; radius = -1; nope = 2; };
CONF
expect_exit 2 "check-config with every kind of error" "$tbnode" check-config "$work/every.conf"
f="$work/every.conf"
printf '%s\n' "tbnode: $f:2: key 'max_peers': 0 is outside 1..1024" \
  "tbnode: $f:3: key 'bogus': unknown key (see node/tbnode.conf.example)" \
  "tbnode: $f:12: key 'crosscheck.window': 5 is outside 10..86400" \
  "tbnode: $f:12: key 'crosscheck.min_agree': 0 is outside 1..64" \
  "tbnode: $f:5: key 'sources.[0].minpoll': 40 is outside -6..17" \
  "tbnode: $f:5: key 'sources.[0].maxpoll': 99 is outside -6..17" \
  "tbnode: $f:6: key 'sources.[1].kind': \"bad\" is not ntp, nts, pool, roughtime, sock or pps" \
  "tbnode: $f:8: key 'sources.[3].extra': unknown key" \
  "tbnode: $f:8: key 'sources.[3].count': 0 is outside 1..16" \
  "tbnode: $f:10: key 'sources.[5].address': must be a string, not an integer" \
  "tbnode: warning: $f:9: key 'sources.[4]': ntp source '127.0.0.1:124' is listed twice (first at line 7)" \
  "tbnode: $f:13: key 'roughtime.nope': unknown key" \
  "tbnode: $f:13: key 'roughtime.radius': -1 is outside 1..86400" >"$work/want"
diff "$work/want" "$work/err" >/dev/null || fail "check-config with every kind of error: $(diff "$work/want" "$work/err")"
# a pps lock naming no source is an error between entries: said though each entry is good
cat >"$work/lock.conf" <<'CONF'
listen = "127.0.0.45:0";
sources = (
  { kind = "sock"; path = "/run/gps.sock"; },
  { kind = "pps"; device = "/dev/pps0"; lock = "/run/gsp.sock"; }
);
CONF
expect_exit 2 "check-config of a pps lock naming no source" "$tbnode" check-config "$work/lock.conf"
grep -qF "tbnode: $work/lock.conf:4: key 'sources.[1].lock': no source in the list is named \"/run/gsp.sock\"" \
  "$work/err" || fail "check-config of a pps lock naming no source: $(cat "$work/err")"
cat >"$work/dup.conf" <<'CONF'
listen = "127.0.0.45:0";
sources = (
  { kind = "ntp"; address = "127.0.0.1:123"; },
  { kind = "pool"; name = "pool.example"; },
  { kind = "ntp"; address = "127.0.0.1:123"; minpoll = 4; }
);
hosts_file = "no-such-hosts";
CONF
expect_exit 0 "check-config of a good file" "$tbnode" check-config "$work/dup.conf"
grep -qx "$work/dup.conf: good: mode hybrid, listen 127.0.0.45:0, 0 seed peer(s), 3 source(s), roughtime server off, state ./tbnode-state" \
  "$work/out" || fail "check-config summary: $(cat "$work/out")"
grep -qx "tbnode: warning: $work/dup.conf:5: key 'sources.\[2\]': ntp source '127.0.0.1:123' is listed twice (first at line 3)" \
  "$work/err" || fail "check-config: no warning for a source listed twice: $(cat "$work/err")"
grep -q "^tbnode: warning: $work/dup.conf:7: key 'hosts_file': cannot read '$work/no-such-hosts'" \
  "$work/err" || fail "check-config: no warning for a missing hosts file: $(cat "$work/err")"

expect_exit 2 "status with a bad flag" "$tbnode" status --bogus
grep -q "^tbnode: unknown option '--bogus' (see tbnode --help)" "$work/err" ||
  fail "status --bogus: $(cat "$work/err")"
expect_exit 0 "status --help" "$tbnode" status --help
grep -q "^usage: tbnode status" "$work/out" || fail "status --help: $(cat "$work/out")"
expect_exit 2 "broadcast --json" "$tbnode" broadcast --json hello
expect_exit 2 "status with an argument" "$tbnode" status now
expect_exit 1 "status without a node" "$tbnode" status --state-dir "$work/none"
grep -q "^tbnode: $work/none/control.sock: cannot connect" "$work/err" || fail "status: $(cat "$work/err")"

# tbnode needs certificates (from tbcert, beside tbnode).
tbcert=$(dirname "$tbnode")/tbcert
"$tbcert" init-ca --dir "$work/ca" --name cli-test >/dev/null || fail "tbcert init-ca"
for i in 1 2; do
  "$tbcert" issue --ca "$work/ca" --name "cli$i" --region test --ip "127.0.0.4$((4 + i))" \
    --out "$work/c$i" >/dev/null || fail "tbcert issue"
done
certflags=(--cert "$work/c1/node.crt" --key "$work/c1/node.key" --ca "$work/c1/ca.crt")

# Waits until the log has a line matching $2 (ERE), up to 5 s.
wait_log() {
  for _ in $(seq 100); do
    grep -Eq "$2" "$1" && return 0
    sleep 0.05
  done
  return 1
}

# Sends a signal to a running tbnode, expects exit 0 within 2 s; prints how long it took.
stop_within_2s() { # what pid signal
  local what=$1 pid=$2 sig=$3 rc="" t0
  t0=$(date +%s%N)
  kill "-$sig" "$pid"
  for _ in $(seq 40); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      rc=$?
      break
    fi
    sleep 0.05
  done
  [ -n "$rc" ] || fail "$what: still running 2 s after SIG$sig"
  [ "${rc:-1}" -eq 0 ] || fail "$what: exit $rc after SIG$sig"
  echo "$what: SIG$sig -> exit ${rc:-none} after $((($(date +%s%N) - t0) / 1000000)) ms"
}

stop_with() {
  local sig=$1
  local sd="$work/state-$sig"
  "$tbnode" --listen 127.0.0.45:0 --state-dir "$sd" --log-level debug "${certflags[@]}" \
    >"$work/run-$sig.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_log "$work/run-$sig.log" "starting" || fail "$sig: did not start: $(cat "$work/run-$sig.log")"
  sleep 0.2
  kill -0 "$pid" 2>/dev/null || fail "$sig: exited early: $(tail -3 "$work/run-$sig.log")"
  [ -d "$sd" ] || fail "$sig: state dir not created"
  [ "$(stat -c %a "$sd" 2>/dev/null)" = 700 ] || fail "$sig: state dir mode $(stat -c %a "$sd")"
  stop_within_2s "idle node" "$pid" "$sig"
}
stop_with INT
stop_with TERM

# A node with a connected peer: the peer must see our CONNECTION_CLOSE (not an idle timeout).
"$tbnode" --listen 127.0.0.46:4551 --state-dir "$work/s2" --log-level debug \
  --cert "$work/c2/node.crt" --key "$work/c2/node.key" --ca "$work/c2/ca.crt" \
  >"$work/peer.log" 2>&1 &
peerpid=$!
pids+=("$peerpid")
"$tbnode" --listen 127.0.0.45:4551 --state-dir "$work/s1" --log-level debug \
  --peer cli2@127.0.0.46:4551 "${certflags[@]}" >"$work/node.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_log "$work/node.log" "peer cli2 .* connected" || fail "cli1 did not connect to cli2"
"$tbnode" status --state-dir "$work/s1" | grep -q "^peer cli2 connected" ||
  fail "tbnode status does not list cli2: $("$tbnode" status --state-dir "$work/s1" 2>&1)"
json=$("$tbnode" status --state-dir "$work/s1" --json)
[[ $json =~ ^\{\"node\":\"cli1\",\"region\":\"test\",\"mode\":\"hybrid\",.*\"peers\":\[\{\"name\":\"cli2\",\"region\":\"test\",\"state\":\"connected\" ]] ||
  fail "status --json: $json"
out=$("$tbnode" broadcast --state-dir "$work/s1" "hello there")
[[ $out =~ ^ok\ cli1\ [0-9]+$ ]] || fail "broadcast answered '$out'"
wait_log "$work/peer.log" "broadcast cli1/[0-9]+ \(11 bytes\) delivered" || fail "cli2 did not get the broadcast"
stop_within_2s "connected node" "$pid" TERM
wait_log "$work/peer.log" "connection cli1 .* closed by peer" ||
  fail "cli2 did not see cli1's CONNECTION_CLOSE: $(grep cli1 "$work/peer.log" | tail -2)"
[ -e "$work/s1/control.sock" ] && fail "control socket left behind"

# A seed named in the config must present that name: another one is refused with the reason.
# Not on cli1's old address: cli2 keeps re-dialling it, and an inbound connection from cli2
# under its own name is no misnamed seed.
"$tbnode" --listen 127.0.0.47:4551 --state-dir "$work/s3" --log-level debug \
  --peer wrong@127.0.0.46:4551 "${certflags[@]}" >"$work/wrong.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_log "$work/wrong.log" 'refused peer 127.0.0.46:4551: name mismatch \(peer is "cli2", expected "wrong"\)' ||
  fail "no name-mismatch refusal: $(grep -v debug "$work/wrong.log" | tail -3)"
"$tbnode" status --state-dir "$work/s3" | grep -q "^peer cli2 connected" && fail "connected to a misnamed seed"
stop_within_2s "refusing node" "$pid" INT
stop_within_2s "peer" "$peerpid" INT

# What tbnode trusts on disk: a private key others can read, and links planted in the state
# directory where quic.secret and tbnode.db go, are refused with the reason.
cp "$work/c1/node.key" "$work/open.key"
chmod 644 "$work/open.key"
expect_exit 1 "key mode 0644" "$tbnode" --listen 127.0.0.45:0 --state-dir "$work/s-key" \
  --cert "$work/c1/node.crt" --key "$work/open.key" --ca "$work/c1/ca.crt"
grep -q "key '$work/open.key': mode 0644 lets others read or change the private key: chmod 600 '$work/open.key'" \
  "$work/err" || fail "key 0644: $(cat "$work/err")"
for f in quic.secret tbnode.db; do
  mkdir -m 700 "$work/s-$f"
  ln -s "$work/elsewhere-$f" "$work/s-$f/$f"
  expect_exit 1 "symlinked $f" "$tbnode" --listen 127.0.0.45:0 --state-dir "$work/s-$f" "${certflags[@]}"
  grep -q "$work/s-$f/$f: .*symbolic link.*not followed" "$work/err" || fail "symlinked $f: $(cat "$work/err")"
  [ -e "$work/elsewhere-$f" ] && fail "symlinked $f: the link was followed"
done
mkdir -m 777 "$work/s-open"
expect_exit 1 "state dir mode 0777" "$tbnode" --listen 127.0.0.45:0 --state-dir "$work/s-open" "${certflags[@]}"
grep -q "state_dir '$work/s-open': writable by others (mode 0777): chmod 700" "$work/err" ||
  fail "state dir 0777: $(cat "$work/err")"

# Started as root with --user nobody: sockets bound and state opened as root, then it runs as
# nobody (all four uids and gids, no supplementary groups) and still answers and stops cleanly.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  udir=$(mktemp -d)
  chmod 711 "$udir" # nobody reaches its state dir inside
  "$tbnode" --listen 127.0.0.45:0 --state-dir "$udir/state" --user nobody "${certflags[@]}" \
    >"$work/user.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_log "$work/user.log" "running as user nobody" || fail "--user nobody: $(tail -3 "$work/user.log")"
  uid=$(id -u nobody) gid=$(id -g nobody)
  grep -Eq "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" "/proc/$pid/status" ||
    fail "--user nobody: $(grep Uid "/proc/$pid/status")"
  grep -Eq "^Gid:\s+$gid\s+$gid\s+$gid\s+$gid$" "/proc/$pid/status" ||
    fail "--user nobody: $(grep Gid "/proc/$pid/status")"
  grep -Eq "^Groups:\s+($gid)?\s*$" "/proc/$pid/status" ||
    fail "--user nobody: $(grep Groups "/proc/$pid/status")"
  [ "$(stat -c %U "$udir/state")" = nobody ] || fail "state dir owned by $(stat -c %U "$udir/state")"
  "$tbnode" status --state-dir "$udir/state" | grep -q "^node cli1 " || fail "--user nobody: no status"
  stop_within_2s "node as nobody" "$pid" TERM
  # Once nobody owns the state, root may not start there without the user: it would own files.
  expect_exit 1 "state dir of another user" "$tbnode" --listen 127.0.0.45:0 --state-dir "$udir/state" "${certflags[@]}"
  grep -q "owned by uid $uid, but tbnode runs as uid 0: chown it" "$work/err" || fail "foreign state dir: $(cat "$work/err")"
  rm -rf "$udir"
else
  echo "not root: privilege drop not tested"
fi

[ "$fails" -eq 0 ] && echo "all passed" && exit 0
exit 1

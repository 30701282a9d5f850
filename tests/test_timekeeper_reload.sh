#!/usr/bin/env bash
# SIGHUP on the real tbnode: the config file is read again and its `sources` applied (added
# start, removed stop, unchanged keep running); a broken file is refused with FILE:LINE and the
# key in the log, and the running sources stay. Then kill -9: a second node measures the first
# as a mesh peer, is killed and restarted, and its new measurements are still accepted (its
# sequence numbers continued: no replay, no out-of-order drop). Loopback 127.0.0.49 only;
# nothing answers the NTP addresses (the sources only need to exist).
set -u
bin=${1:?usage: test_timekeeper_reload.sh BINDIR}
work=$(mktemp -d)
pid=
pid2=
cleanup() {
  [ -n "$pid" ] && { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  [ -n "$pid2" ] && { kill -KILL "$pid2" 2>/dev/null; wait "$pid2" 2>/dev/null; }
  rm -rf "$work"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$bin/tbcert" init-ca --dir "$work/ca" --name reload >/dev/null || exit 1
"$bin/tbcert" issue --ca "$work/ca" --name solo --region here --ip 127.0.0.49 \
  --out "$work/n" >/dev/null || exit 1
"$bin/tbcert" issue --ca "$work/ca" --name duo --region there --ip 127.0.0.49 \
  --out "$work/n2" >/dev/null || exit 1

conf() { # sources... -> the config file
  {
    printf 'listen = "127.0.0.49:4581";\ncert = "n/node.crt"; key = "n/node.key"; ca = "n/ca.crt";\n'
    # A short idle timeout: after duo's kill -9 below, solo refuses its new connection as a
    # duplicate until the dead one times out.
    printf 'state_dir = "state";\nidle_timeout_ms = 2000;\nkeepalive_ms = 500;\nsources = (\n'
    local first=1 s
    for s in "$@"; do
      [ $first = 1 ] || printf ',\n'
      printf '  { kind = "ntp"; address = "%s"; minpoll = 4; }' "$s"
      first=0
    done
    printf '\n);\n'
  } >"$work/tbnode.conf"
}

names() { # the configured names of the running sources, sorted, one line
  "$bin/tbnode" status --json --state-dir "$work/state" |
    jq -r '[.sources[] | select(.kind == "ntp") | .name] | sort | join(" ")'
}

wait_for() { # description command...
  local what=$1
  shift
  for _ in $(seq "${tries:-50}"); do
    "$@" && return 0
    sleep 0.1
  done
  fail "$what"
  return 1
}

names_are() { [ "$(names 2>/dev/null)" = "$1" ]; }

conf 127.0.0.49:1123 127.0.0.49:1124
"$bin/tbnode" --config "$work/tbnode.conf" 2>"$work/log" &
pid=$!
wait_for "started with two sources" names_are "127.0.0.49:1123 127.0.0.49:1124"

# One removed, one added, one unchanged.
conf 127.0.0.49:1124 127.0.0.49:1125
kill -HUP "$pid"
wait_for "reload: sources are now 1124 1125 (got '$(names)')" \
  names_are "127.0.0.49:1124 127.0.0.49:1125"
grep -q "SIGHUP: $work/tbnode.conf reloaded" "$work/log" || fail "no reload line in the log"
grep -q "sources: 1 kept, 1 stopped, 1 started" "$work/log" ||
  fail "the unchanged source was not kept running (log: $(grep 'sources:' "$work/log"))"

# A broken source entry (line 7 of the file): refused, named, and nothing changes.
conf 127.0.0.49:1126
sed -i 's/kind = "ntp"; address/kind = "ntp"; adress/' "$work/tbnode.conf"
kill -HUP "$pid"
wait_for "bad entry logged with FILE:LINE" \
  grep -q "SIGHUP: $work/tbnode.conf:7: key 'sources.\[0\].adress': .*running configuration stays" \
  "$work/log"
names_are "127.0.0.49:1124 127.0.0.49:1125" || fail "a refused reload changed the sources: $(names)"

# A broken crosscheck value: same.
conf 127.0.0.49:1126
printf 'crosscheck = {\n  min_agree = 0;\n};\n' >>"$work/tbnode.conf"
kill -HUP "$pid"
wait_for "bad crosscheck value logged with FILE:LINE" \
  grep -q "SIGHUP: $work/tbnode.conf:10: key 'crosscheck.min_agree': 0 is outside 1..64" "$work/log"
names_are "127.0.0.49:1124 127.0.0.49:1125" || fail "a refused reload changed the sources: $(names)"

# kill -9 and restart of a second node that measures the first as a mesh peer.
cat >"$work/duo.conf" <<EOF2
listen = "127.0.0.49:4582";
cert = "n2/node.crt"; key = "n2/node.key"; ca = "n2/ca.crt";
state_dir = "state2";
peers = ( "solo@127.0.0.49:4581" );
ping_interval_ms = 100;
idle_timeout_ms = 2000;
keepalive_ms = 500;
crosscheck = { peer_interval = 1; };
EOF2
m() { # state dir, jq path -> number
  "$bin/tbnode" status --json --state-dir "$work/$1" 2>/dev/null | jq -r "$2"
}
at_least() { local v; v=$(m "$1" "$2"); [ -n "$v" ] && [ "$v" != null ] && [ "$v" -ge "$3" ]; }
"$bin/tbnode" --config "$work/duo.conf" 2>"$work/log2" &
pid2=$!
wait_for "duo sends measurements of solo" at_least state2 .measurements.sent 3
wait_for "solo accepts them" at_least state .measurements.accepted 2
kill -KILL "$pid2"
wait "$pid2" 2>/dev/null
pid2=
before=$(m state .measurements.accepted)
"$bin/tbnode" --config "$work/duo.conf" 2>>"$work/log2" &
pid2=$!
tries=100 wait_for "solo accepts duo's measurements after kill -9 (accepted was $before)" \
  at_least state .measurements.accepted $((before + 2))
for why in replay out_of_order bad_signature unknown_origin malformed; do
  [ "$(m state ".measurements.dropped.$why")" = 0 ] ||
    fail "solo dropped duo's measurements as $why after the restart"
done
kill -TERM "$pid2"
wait "$pid2"
pid2=

# The node still runs and stops cleanly.
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM"
[ "$fails" -eq 0 ] || { sed "s/^/  log: /" "$work/log" >&2; sed "s/^/  log2: /" "$work/log2" >&2 2>/dev/null; exit 1; }
echo "ok"

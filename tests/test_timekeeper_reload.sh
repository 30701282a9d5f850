#!/usr/bin/env bash
# SIGHUP on the real tbnode: the config file is read again and its `sources` applied (added
# start, removed stop, unchanged keep running); a broken file is refused with FILE:LINE and the
# key in the log, and the running sources stay. Loopback 127.0.0.49 only; nothing answers the
# NTP addresses (the sources only need to exist).
set -u
bin=${1:?usage: test_timekeeper_reload.sh BINDIR}
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  rm -rf "$work"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$bin/tbcert" init-ca --dir "$work/ca" --name reload >/dev/null || exit 1
"$bin/tbcert" issue --ca "$work/ca" --name solo --region here --ip 127.0.0.49 \
  --out "$work/n" >/dev/null || exit 1

conf() { # sources... -> the config file
  {
    printf 'listen = "127.0.0.49:4581";\ncert = "n/node.crt"; key = "n/node.key"; ca = "n/ca.crt";\n'
    printf 'state_dir = "state";\nsources = (\n'
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
  local what=$1 i
  shift
  for i in $(seq 50); do
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

# A broken source entry (line 5 of the file): refused, named, and nothing changes.
conf 127.0.0.49:1126
sed -i 's/kind = "ntp"; address/kind = "ntp"; adress/' "$work/tbnode.conf"
kill -HUP "$pid"
wait_for "bad entry logged with FILE:LINE" \
  grep -q "SIGHUP: $work/tbnode.conf:5: sources.\[0\].adress: .*running configuration stays" \
  "$work/log"
names_are "127.0.0.49:1124 127.0.0.49:1125" || fail "a refused reload changed the sources: $(names)"

# A broken crosscheck value: same.
conf 127.0.0.49:1126
printf 'crosscheck = {\n  min_agree = 0;\n};\n' >>"$work/tbnode.conf"
kill -HUP "$pid"
wait_for "bad crosscheck value logged with FILE:LINE" \
  grep -q "SIGHUP: $work/tbnode.conf:8: key 'crosscheck.min_agree': 0 is outside 1..64" "$work/log"
names_are "127.0.0.49:1124 127.0.0.49:1125" || fail "a refused reload changed the sources: $(names)"

# The node still runs and stops cleanly.
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM"
[ "$fails" -eq 0 ] || { sed 's/^/  log: /' "$work/log" >&2; exit 1; }
echo "ok"

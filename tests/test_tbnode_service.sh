#!/usr/bin/env bash
# tbnode under a service manager, without one: what systemd would see of a Type=notify
# tbnode@.service. A perl listener stands in for NOTIFY_SOCKET, and stderr goes to a file that
# JOURNAL_STREAM names, as journald's stream would be. READY=1 comes once the node answers on its
# control socket, STATUS= tells peers and verdicts and follows a peer connecting, STOPPING=1
# comes on SIGTERM; log lines carry the syslog priority and no timestamp. Without JOURNAL_STREAM
# the same lines carry an ISO 8601 UTC time instead. Loopback 127.0.0.131 and .132.
set -u
bin=${1:?usage: test_tbnode_service.sh BINDIR}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
wait_for() { # seconds description command...
  local n=$(($1 * 20)) what=$2
  shift 2
  for _ in $(seq "$n"); do
    "$@" && return 0
    sleep 0.05
  done
  fail "$what"
  return 1
}

"$bin/tbcert" init-ca --dir "$work/ca" --name svc >/dev/null || exit 1
for n in a b; do
  "$bin/tbcert" issue --ca "$work/ca" --name "svc-$n" --region "r$n" --ip 127.0.0.131 \
    --ip 127.0.0.132 --out "$work/$n" >/dev/null || exit 1
done
flags_a=(--cert "$work/a/node.crt" --key "$work/a/node.key" --ca "$work/a/ca.crt")
flags_b=(--cert "$work/b/node.crt" --key "$work/b/node.key" --ca "$work/b/ca.crt")

perl -MIO::Socket::UNIX -e '
  my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $ARGV[0]) or die "bind: $!";
  $| = 1;
  while (defined $s->recv(my $m, 4096)) { print "$m\n" }' "$work/notify" >"$work/notify.log" &
pids+=($!)
wait_for 5 "the notify listener did not start" test -S "$work/notify"

# Node a under "systemd"; its seed b is not up yet.
: >"$work/a.log"
stream=$(stat -c %d:%i "$work/a.log")
NOTIFY_SOCKET=$work/notify JOURNAL_STREAM=$stream \
  "$bin/tbnode" --listen 127.0.0.131:4611 --peer svc-b@127.0.0.132:4611 --state-dir "$work/sa" \
  "${flags_a[@]}" 2>>"$work/a.log" &
apid=$!
pids+=("$apid")
wait_for 10 "no READY=1: $(cat "$work/notify.log")" grep -qx "READY=1" "$work/notify.log"
"$bin/tbnode" status --state-dir "$work/sa" >/dev/null 2>&1 || fail "READY=1 before the node answers"
grep -qx "STATUS=0/1 peers connected; 0 sources" "$work/notify.log" ||
  fail "first STATUS: $(grep STATUS "$work/notify.log")"

# b comes up: within two status intervals STATUS says the peer is connected.
"$bin/tbnode" --listen 127.0.0.132:4611 --state-dir "$work/sb" "${flags_b[@]}" 2>"$work/b.log" &
pids+=($!)
wait_for 15 "STATUS did not follow the peer: $(grep STATUS "$work/notify.log")" \
  grep -q "^STATUS=1/1 peers connected" "$work/notify.log"
n=$(grep -c "^STATUS=" "$work/notify.log")
[ "$n" -le 6 ] || fail "STATUS sent $n times in a few seconds: only when it changes, at most every 5 s"

kill -TERM "$apid"
wait "$apid"
rc=$?
[ $rc -eq 0 ] || fail "exit $rc after SIGTERM"
wait_for 5 "no STOPPING=1: $(tail -3 "$work/notify.log")" grep -q "^STOPPING=1" "$work/notify.log"

# Journal lines: "<PRIORITY>tbnode LEVEL: ...", no timestamp, so journalctl -p can filter.
grep -q "^<6>tbnode info: tbnode [0-9.]* starting: " "$work/a.log" || fail "no <6> start line: $(head -3 "$work/a.log")"
grep -q "^<6>tbnode info: stopped$" "$work/a.log" || fail "no <6> stop line: $(tail -3 "$work/a.log")"
bad=$(grep -v "^<[3467]>tbnode \(error\|warn\|info\|debug\): " "$work/a.log")
[ -z "$bad" ] || fail "lines without a priority under journald: $bad"
grep -Eq "^[0-9]{4}-" "$work/a.log" && fail "a timestamp under journald: $(grep -E '^[0-9]{4}-' "$work/a.log" | head -1)"
# Not under journald (b): ISO 8601 UTC with milliseconds, no priority.
grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z tbnode info: tbnode [0-9.]* starting: " \
  "$work/b.log" || fail "b's log: $(head -2 "$work/b.log")"
grep -q "^<" "$work/b.log" && fail "a priority prefix outside journald: $(grep '^<' "$work/b.log" | head -1)"

[ "$fails" -eq 0 ] || { sed 's/^/  notify: /' "$work/notify.log" >&2; exit 1; }
echo "ok: $(grep -c . "$work/notify.log") notify messages"

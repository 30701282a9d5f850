#!/usr/bin/env bash
# The certificate lifecycle on the real tbnode (node/certwatch.h): a node whose certificate
# expires in 3 days warns in its log and in `tbnode status` (text and JSON); `tbcert renew` and
# SIGHUP reload it without a restart (same process, warning gone); a revocation list from
# `tbcert revoke` in the `crl` file is taken; a corrupt list is refused with one line naming
# the file and the list in use stays. Loopback 127.0.0.146 only.
set -u
bin=${1:?usage: test_certwatch_cli.sh BINDIR}
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$bin/tbcert" init-ca --dir "$work/ca" --name life >/dev/null || exit 1
"$bin/tbcert" issue --ca "$work/ca" --name solo --region here --ip 127.0.0.146 --days 3 \
  --out "$work/n" >/dev/null || exit 1
"$bin/tbcert" issue --ca "$work/ca" --name gone --region here --out "$work/g" >/dev/null || exit 1
cat >"$work/tbnode.conf" <<'CONF'
listen = "127.0.0.146:4618";
cert = "n/node.crt"; key = "n/node.key"; ca = "n/ca.crt";
crl = "revoked.crl";
state_dir = "state";
CONF

status() { "$bin/tbnode" status --state-dir "$work/state" "$@" 2>/dev/null; }
wait_for() { # description command...
  local what=$1
  shift
  for _ in $(seq 50); do
    "$@" && return 0
    sleep 0.1
  done
  fail "$what"
  return 1
}
status_has() { status | grep -q -- "$1"; }
json_is() { [ "$(status --json | jq -c "$1")" = "$2" ]; }

"$bin/tbnode" --config "$work/tbnode.conf" 2>"$work/log" &
pid=$!
wait_for "node up" status_has "^node solo"
status_has "^warning certificate expires at" || fail "no expiry warning in status: $(status)"
json_is .certificate.expiry_warning true || fail "JSON: expiry_warning not true"
# Issued for 3 days: whole days left are 2 (or 3 when the issuing rounded the end up a second).
days=$(status --json | jq -c .certificate.days_left)
[ "$days" = 2 ] || [ "$days" = 3 ] || fail "JSON: days_left not 2 or 3: $(status --json | jq -c .certificate)"
grep -q "warn: certificate $work/n/node.crt expires at .* (in 3.0 days)" "$work/log" ||
  fail "no expiry warning in the log"

# Renewed for 90 days; SIGHUP takes it (the file watch may be first: either way, no restart).
"$bin/tbcert" renew --ca "$work/ca" --in "$work/n" --days 90 >/dev/null || fail "tbcert renew"
kill -HUP "$pid"
wait_for "renewed certificate in status" json_is .certificate.days_left 89
json_is .certificate.expiry_warning false || fail "still warning after the renewal"
status_has "^warning" && fail "status still warns: $(status)"
grep -q "certificate $work/n/node.crt reloaded: valid until" "$work/log" || fail "no reload line"
kill -0 "$pid" || fail "the node is gone"

# A revocation list appears in the `crl` file: taken (it is watched; SIGHUP too).
"$bin/tbcert" revoke --ca "$work/ca" --cert "$work/g/node.crt" --crl "$work/revoked.crl" \
  >/dev/null || fail "tbcert revoke"
kill -HUP "$pid"
wait_for "list taken" status_has "^crl number=1 revoked=1"

# A corrupt list: refused, one line naming the file, the list in use stays.
echo "not a list" >"$work/revoked.crl"
kill -HUP "$pid"
wait_for "corrupt list refused in the log" grep -q "error: revocation list: $work/revoked.crl: " \
  "$work/log"
sleep 0.5 # the file watch sees the same change: not logged twice
[ "$(grep -c "error: revocation list: $work/revoked.crl: " "$work/log")" = 1 ] ||
  fail "the refusal was logged more than once"
status_has "^crl number=1 revoked=1" || fail "the list in use changed: $(status)"
json_is .certificate.crl_number 1 || fail "JSON: crl_number not 1"

kill -TERM "$pid"
wait "$pid" || fail "tbnode exit status $?"
pid=
grep -n "error\|warn" "$work/log" | grep -v "expires at\|revocation list: $work/revoked.crl" |
  sed 's/^/unexpected: /' >&2
[ $fails = 0 ] && echo "certwatch cli: all checks passed"
exit $((fails > 0))

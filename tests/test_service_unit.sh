#!/usr/bin/env bash
# dist/tbnode@.service as installed (cmake --install into a temporary prefix, so ExecStart names
# a binary that exists): `systemd-analyze verify` finds nothing to say, the sandbox's offline
# `systemd-analyze security` exposure stays at or below TB_MAX_EXPOSURE, and a unit with a
# mistake in it does fail verify (the check can fail).
set -u
build=${1:?usage: test_service_unit.sh BUILD_DIR}
max=${TB_MAX_EXPOSURE:-1.5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze missing (scripts/setup installs systemd)" >&2; exit 1; }
cmake --install "$build" --prefix "$work/usr" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log" >&2; exit 1; }
unit=$work/usr/lib/systemd/system/tbnode@.service
[ -f "$unit" ] || { echo "FAIL: no unit at $unit" >&2; exit 1; }
[ -f "$work/usr/lib/sysusers.d/tbnode.conf" ] || fail "no sysusers.d/tbnode.conf installed"
grep -qx "ExecStart=$work/usr/bin/tbnode --config /etc/tbnode/%i.conf --state-dir /var/lib/tbnode/%i" \
  "$unit" || fail "ExecStart does not name the installed binary: $(grep ExecStart= "$unit")"

# Documentation=man:... is checked against the pages just installed.
export MANPATH=$work/usr/share/man
if ! systemd-analyze verify "$unit" >"$work/verify" 2>&1 || [ -s "$work/verify" ]; then
  fail "systemd-analyze verify: $(cat "$work/verify")"
fi

sed 's/^ProtectSystem=strict/ProtectSystm=strict/' "$unit" >"$work/tbnode-bad@.service"
systemd-analyze verify "$work/tbnode-bad@.service" >"$work/verify-bad" 2>&1
grep -q "Unknown key 'ProtectSystm'" "$work/verify-bad" || fail "verify did not notice ProtectSystm="

systemd-analyze security --offline=yes "$unit" >"$work/security" 2>&1
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$work/security")
if [ -z "$score" ]; then
  fail "no exposure score in: $(tail -5 "$work/security")"
else
  echo "systemd-analyze security --offline=yes tbnode@.service: exposure $score (at most $max)"
  awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }' ||
    { grep '✗' "$work/security" >&2; fail "exposure $score is above $max"; }
fi

[ "$fails" -eq 0 ] || exit 1
echo "ok"

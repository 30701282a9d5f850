#!/usr/bin/env bash
# The Debian package on a fresh Debian 12: CPack builds the .deb from this build, debootstrap
# makes a minimal bookworm tree (cached in BUILD/pkgtest/base, a fresh copy per run), and apt
# installs the .deb in it with its dependencies from deb.debian.org. Inside the tree: every tool
# answers --version with the project's version, the tbnode user exists, the unit, sysusers file,
# man pages and example config are where they belong, and an operator's first steps work
# (tbcert makes a CA and a node certificate, `tbnode check-config` passes a config written for
# them, and fails with FILE:LINE and exit 2 on a broken one).
# Needs root (chroot) and deb.debian.org (TB_DEBIAN_MIRROR overrides): without them the test is
# skipped (exit 77) with the reason, unless TB_PACKAGE_TEST=required (scripts/test sets it),
# which makes it fail instead.
set -u
build=${1:?usage: test_package.sh BUILD_DIR}
build=$(cd "$build" && pwd)
mirror=${TB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=$build/pkgtest
t0=$(date +%s)
root=
cleanup() {
  [ -n "$root" ] || return
  umount "$root/proc" 2>/dev/null
  rm -rf "$root"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
cannot() {
  if [ "${TB_PACKAGE_TEST:-}" = required ]; then
    echo "FAIL: $* (TB_PACKAGE_TEST=required)" >&2
    exit 1
  fi
  echo "SKIP: $*"
  exit 77
}
step() { echo "[$(($(date +%s) - t0)) s] $*"; }

[ "$(id -u)" -eq 0 ] || cannot "needs root for chroot and debootstrap"
for tool in debootstrap chroot cpack dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || cannot "$tool is not installed (scripts/setup installs it)"
done
host=${mirror#*://}
host=${host%%/*}
getent ahosts "$host" >/dev/null || cannot "cannot resolve $host (no network?)"

mkdir -p "$cache"
step "cpack: building the .deb"
rm -rf "$cache/pkg"
(cd "$build" && cpack -G DEB -B "$cache/pkg") >"$cache/cpack.log" 2>&1 ||
  { tail -30 "$cache/cpack.log" >&2; echo "FAIL: cpack" >&2; exit 1; }
deb=$(ls "$cache"/pkg/tbnode_*.deb)
version=$(dpkg-deb -f "$deb" Version)
step "$(basename "$deb"): $(stat -c %s "$deb") bytes; Depends: $(dpkg-deb -f "$deb" Depends)"

if [ ! -e "$cache/base/.complete" ]; then
  step "debootstrap --variant=minbase bookworm (once; cached in $cache/base)"
  rm -rf "$cache/base" "$cache/base.tmp"
  if ! debootstrap --variant=minbase bookworm "$cache/base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
    tail -20 "$cache/debootstrap.log" >&2
    cannot "debootstrap from $mirror failed"
  fi
  touch "$cache/base.tmp/.complete"
  mv "$cache/base.tmp" "$cache/base"
fi

step "a fresh copy of the base tree"
root=$(mktemp -d "$cache/root.XXXXXX")
cp -a "$cache/base/." "$root/" || { echo "FAIL: cannot copy the base tree" >&2; exit 1; }
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc" || { echo "FAIL: cannot mount /proc in the tree" >&2; exit 1; }
cp "$deb" "$root/tmp/tbnode.deb"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

step "apt-get install ./tbnode.deb"
in_root apt-get update -qq >"$cache/apt.log" 2>&1 ||
  { tail -20 "$cache/apt.log" >&2; cannot "apt-get update from $mirror failed"; }
if ! in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  /tmp/tbnode.deb >>"$cache/apt.log" 2>&1; then
  tail -30 "$cache/apt.log" >&2
  echo "FAIL: apt-get install of the .deb" >&2
  exit 1
fi
step "installed"

for tool in tbnode tbcert tbroughtime tbntp; do
  out=$(in_root "$tool" --version 2>&1)
  [ "$out" = "$tool $version" ] || fail "$tool --version printed '$out', want '$tool $version'"
done
in_root getent passwd tbnode >/dev/null || fail "no user tbnode after install"
[ -d "$root/etc/tbnode" ] || fail "no /etc/tbnode after install"
for f in /usr/lib/systemd/system/tbnode@.service /usr/lib/sysusers.d/tbnode.conf \
  /usr/share/man/man8/tbnode.8 /usr/share/man/man5/tbnode.conf.5 /usr/share/man/man1/tbcert.1 \
  /usr/share/man/man1/tbroughtime.1 /usr/share/man/man1/tbntp.1 \
  /usr/share/doc/tbnode/examples/tbnode.conf; do
  [ -s "$root$f" ] || fail "$f not installed (or empty)"
done
grep -qx "ExecStart=/usr/bin/tbnode --config /etc/tbnode/%i.conf --state-dir /var/lib/tbnode/%i" \
  "$root/usr/lib/systemd/system/tbnode@.service" || fail "the unit does not start /usr/bin/tbnode"

# The operator's first steps, as README.md gives them.
in_root tbcert init-ca --dir /etc/tbnode/ca --name pkgtest >/dev/null || fail "tbcert init-ca"
in_root tbcert issue --ca /etc/tbnode/ca --name eu1 --region eu --ip 192.0.2.1 \
  --out /etc/tbnode/eu1 >/dev/null || fail "tbcert issue"
cat >"$root/etc/tbnode/eu1.conf" <<'CONF'
listen = "0.0.0.0:4433";
peers = ( "us1@192.0.2.2:4433" );
cert = "eu1/node.crt"; key = "eu1/node.key"; ca = "eu1/ca.crt";
sources = (
  { kind = "ntp"; address = "192.0.2.123"; },
  { kind = "pool"; name = "2.debian.pool.ntp.org"; count = 4; }
);
crosscheck = { window = 600; min_agree = 2; };
CONF
check_config() { # FILE: sets out and rc
  out=$(in_root tbnode check-config "$1" 2>&1)
  rc=$?
}
check_config /etc/tbnode/eu1.conf
[ $rc -eq 0 ] || fail "check-config of a good file: exit $rc: $out"
echo "$out" | grep -q "^/etc/tbnode/eu1.conf: good: mode hybrid, listen 0.0.0.0:4433, 1 seed peer(s), 2 source(s)" ||
  fail "check-config summary: $out"
cat >"$root/etc/tbnode/bad.conf" <<'CONF'
listen = "0.0.0.0:4433";
sources = (
  { kind = "ntp"; adress = "192.0.2.123"; }
);
CONF
check_config /etc/tbnode/bad.conf
[ $rc -eq 2 ] || fail "check-config of a bad file: exit $rc, want 2: $out"
echo "$out" | grep -q "^tbnode: /etc/tbnode/bad.conf:3: key 'sources.\[0\].adress': " ||
  fail "check-config of a bad file: $out"

step "done"
[ "$fails" -eq 0 ] || exit 1
echo "ok"

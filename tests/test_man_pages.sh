#!/usr/bin/env bash
# The man pages (man/): each formats with neither a groff warning (groff -ww) nor a man-db one
# (man --warnings, which also runs the preprocessors), names itself in .TH and NAME as its file
# name says, and has the sections a reader looks for. A page with a warning fails the test.
set -u
[ $# -gt 0 ] || { echo "usage: test_man_pages.sh PAGE..." >&2; exit 2; }
for tool in groff man; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (scripts/setup installs groff-base, man-db)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

for page in "$@"; do
  base=$(basename "$page")
  name=${base%.*} section=${base##*.}
  groff -ww -z -man "$page" 2>"$work/groff"
  [ -s "$work/groff" ] && fail "$base: groff -ww: $(cat "$work/groff")"
  MANWIDTH=80 man --warnings -l "$page" >"$work/text" 2>"$work/man"
  [ -s "$work/man" ] && fail "$base: man --warnings: $(cat "$work/man")"
  upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
  grep -q "^\.TH $upper $section " "$page" || fail "$base: .TH does not say $upper $section"
  grep -q "^$name \\\\- " "$page" || fail "$base: NAME does not start with '$name \\-'"
  for s in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
    grep -q "^$s" "$work/text" || fail "$base: no $s section"
  done
done

# The check fails on a broken page.
printf '.TH BROKEN 1\n.SH NAME\nbroken \\- x\n.BOGUS\n' >"$work/broken.1"
groff -ww -z -man "$work/broken.1" 2>"$work/groff"
[ -s "$work/groff" ] || fail "groff -ww said nothing about an undefined macro"

[ "$fails" -eq 0 ] || exit 1
echo "ok: $# pages"

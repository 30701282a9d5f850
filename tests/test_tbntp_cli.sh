#!/usr/bin/env bash
# tbntp's command line: --help (stdout, exit 0), --version, unknown or misspelt options and bad
# numbers (one line on stderr naming them, exit 2). Measuring is in test_sources_chrony.c.
# Usage: test_tbntp_cli.sh PATH/TO/tbntp VERSION
set -u
tbntp=${1:?usage: test_tbntp_cli.sh PATH/TO/tbntp VERSION}
version=${2:?usage: test_tbntp_cli.sh PATH/TO/tbntp VERSION}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# run ARGS...: tbntp's exit status in $rc, its stdout and stderr in out and err.
run() {
  "$tbntp" "$@" >"$work/out" 2>"$work/err"
  rc=$?
}

# expect_error DESCRIPTION MESSAGE ARGS...: exit 2, nothing on stdout, stderr is the one line
# "tbntp: MESSAGE".
expect_error() {
  local what=$1 msg=$2
  shift 2
  run "$@"
  [ "$rc" -eq 2 ] || fail "$what: exit $rc, want 2"
  [ "$(cat "$work/err")" = "tbntp: $msg" ] || fail "$what: stderr '$(cat "$work/err")', want 'tbntp: $msg'"
  [ ! -s "$work/out" ] || fail "$what: wrote to stdout"
}

run --help
[ "$rc" -eq 0 ] || fail "--help: exit $rc"
grep -q "^usage: tbntp query HOST" "$work/out" || fail "--help: $(head -1 "$work/out")"
grep -q -- "--timeout S" "$work/out" || fail "--help does not document --timeout"
[ ! -s "$work/err" ] || fail "--help wrote to stderr"
run --version
[ "$rc" -eq 0 ] || fail "--version: exit $rc"
[ "$(cat "$work/out")" = "tbntp $version" ] || fail "--version prints '$(cat "$work/out")'"

expect_error "misspelt option" "unknown option '--timout' (see tbntp --help)" \
  query 127.0.0.1 --timout 3
expect_error "unknown short option" "unknown option '-x' (see tbntp --help)" -x query 127.0.0.1
expect_error "missing value" "option '--timeout' needs a value (see tbntp --help)" \
  query 127.0.0.1 --timeout
expect_error "timeout not a number" "--timeout: 'abc' is not a number" \
  query 127.0.0.1 --timeout abc
expect_error "timeout with junk" "--timeout: '2s' is not a number" query 127.0.0.1 --timeout 2s
expect_error "timeout empty" "--timeout: '' is not a number" query 127.0.0.1 --timeout ""
expect_error "timeout nan" "--timeout: 'nan' is not a number" query 127.0.0.1 --timeout nan
expect_error "timeout negative" "--timeout: -1 is outside 0.01..3600" query 127.0.0.1 --timeout -1
expect_error "timeout too long" "--timeout: 1e9 is outside 0.01..3600" \
  query 127.0.0.1 --timeout 1e9
expect_error "no command" "a command is needed: query HOST[:PORT] (see tbntp --help)"
expect_error "unknown command" "the only command is query (see tbntp --help)" ask 127.0.0.1
expect_error "no host" "query takes exactly one HOST[:PORT] (see tbntp --help)" query

echo "$fails failed"
[ "$fails" -eq 0 ]

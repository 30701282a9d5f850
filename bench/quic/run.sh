#!/usr/bin/env bash
# bench/quic/run.sh [BUILD_DIR] [N]: makes a CA and two node certificates with tbcert in a
# temporary directory, runs bench_quic on loopback, removes the directory.
set -euo pipefail
build=${1:-build}
n=${2:-200}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM HUP
tbcert="$build/bin/tbcert"
"$tbcert" init-ca --dir "$tmp/ca" --name bench >/dev/null
# a and b for the pair runs; p0..p31 for the 32-peer memory run (distinct names, or the
# one-connection-per-pair rule would close all but one).
for node in a b $(seq -f 'p%g' 0 31); do
    "$tbcert" issue --ca "$tmp/ca" --name "$node" --region bench --out "$tmp/$node" >/dev/null
    cp "$tmp/$node/node.crt" "$tmp/$node.crt"
    cp "$tmp/$node/node.key" "$tmp/$node.key"
done
cp "$tmp/ca/ca.crt" "$tmp/ca.crt"
"$build/bin/bench_quic" "$tmp" "$n"

#!/usr/bin/env bash
# Roughtime benchmark on loopback: the server pinned to core 0 (taskset), the load generator on
# core 1, batch sizes 1, 8, 64, 128; then the same server flooded without a window while its
# resident memory is sampled. Usage: bench/roughtime/run.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
build=${1:-build}
secs=${2:-3}
bin=$build/bin
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # utime + stime of the server, in ticks
pk=$("$bin/tbroughtime" keygen --out "$dir/key")
"$bin/rt_bench" compute
for b in 1 8 64 128; do
  taskset -c 0 "$bin/tbroughtime" serve --key "$dir/key" --listen 127.0.0.65:2002 \
    --max-batch "$b" --flush-interval-us 200 2>"$dir/s.log" &
  pid=$!
  sleep 0.3
  c0=$(cpu)
  taskset -c 1 "$bin/rt_bench" load 127.0.0.65:2002 "$pk" "$secs" $((b * 4 > 64 ? b * 4 : 64)) \
    | sed "s/^/batch $b: /"
  c1=$(cpu)
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  grep -E "received|dropped" "$dir/s.log" | sed "s/^/batch $b: /"
  # The generator shares the machine and may be the limit: the server's own CPU time per answer
  # (user + system, loopback delivery included) says what one saturated core would reach.
  n=$(grep -o 'answered [0-9]*' "$dir/s.log" | awk '{print $2}')
  awk -v b="$b" -v t=$((c1 - c0)) -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    if (n > 0 && t > 0)
      printf "batch %s: server CPU %.2f us per response, %.0f responses/s per saturated core\n",
             b, t / hz * 1e6 / n, n * hz / t }'
done
# Overload: a window far above what one core answers; memory must stay flat.
taskset -c 0 "$bin/tbroughtime" serve --key "$dir/key" --listen 127.0.0.65:2002 --max-batch 64 \
  2>"$dir/s.log" &
pid=$!
sleep 0.3
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
before=$(rss)
taskset -c 1 "$bin/rt_bench" load 127.0.0.65:2002 "$pk" "$secs" 100000 | sed "s/^/overload: /"
after=$(rss)
echo "overload: server RSS ${before} kB before, ${after} kB after"

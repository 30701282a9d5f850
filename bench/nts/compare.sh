#!/usr/bin/env bash
# The closing note of issue 14: one chronyd serving NTS on loopback, measured by tbntp over
# plain NTP, by tbntp over NTS, and by chrony's own NTS client (chronyd -Q, which measures and
# prints the offset without touching the clock). Reported, never gated. Run it in a network
# namespace of its own:
#   unshare -n sh -c 'ip link set lo up && bench/nts/compare.sh build/bin [RUNS]'
set -uo pipefail
bin=${1:?usage: compare.sh BIN_DIR [RUNS]}
runs=${2:-20}
bin=$(cd "$bin" && pwd) || exit 1
ip=127.0.3.10
work=$(mktemp -d "${TMPDIR:-/tmp}/tb-nts-compare.XXXXXX")
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

# A test CA and a P-256 server certificate for the address.
printf 'cn = "bench CA"\nca\ncert_signing_key\nexpiration_days = 2\n' >ca.tmpl
printf 'cn = "nts.test"\nip_address = "%s"\ntls_www_server\nsigning_key\nexpiration_days = 2\n' \
  "$ip" >srv.tmpl
{
  certtool -p --key-type ecdsa --curve secp256r1 --outfile ca.key &&
    certtool -s --load-privkey ca.key --template ca.tmpl --outfile ca.pem &&
    certtool -p --key-type ecdsa --curve secp256r1 --outfile srv.key &&
    certtool -c --load-privkey srv.key --load-ca-certificate ca.pem --load-ca-privkey ca.key \
      --template srv.tmpl --outfile srv.pem
} >certtool.log 2>&1 || { echo "certtool failed: see certtool.log" >&2; exit 1; }

cat >server.conf <<CONF
port 11123
bindaddress $ip
local stratum 1
allow 127.0.0.0/8
cmdport 0
bindcmdaddress /
pidfile $work/server.pid
ntsserverkey $work/srv.key
ntsservercert $work/srv.pem
ntsport 14460
ntsdumpdir $work
CONF
chronyd -x -d -u root -f server.conf >server.log 2>&1 &
server_pid=$!
sleep 0.5

cat >client.conf <<CONF
server $ip port 11123 nts ntsport 14460 iburst
ntstrustedcerts $work/ca.pem
port 0
cmdport 0
bindcmdaddress /
pidfile $work/client.pid
CONF

us() { awk '{ printf "%.1f", $1 * 1e6 }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

: >plain.txt
: >nts.txt
: >chrony.txt
for _ in $(seq "$runs"); do
  "$bin/tbntp" query "$ip:11123" | awk '/^offset/ { print $2 }' >>plain.txt
  "$bin/tbntp" query "$ip:11123" --nts --ntsport 14460 --ca-file ca.pem |
    awk '/^offset/ { print $2 }' >>nts.txt
done
# chronyd -Q: "System clock wrong by X seconds" after its burst, X = server minus local (as
# tbntp prints; checked with a server shifted +2 s). A handful of runs: each takes seconds.
for _ in $(seq $(((runs + 3) / 4))); do
  chronyd -Q -u root -f client.conf 2>&1 |
    awk '/System clock wrong by/ { for (i = 1; i <= NF; i++) if ($i == "by") print $(i + 1) }' \
      >>chrony.txt
done

printf '%-34s %6s %12s %12s %12s\n' "client (same chronyd 4.3 server)" runs "median µs" "min µs" "max µs"
for f in plain nts chrony; do
  case $f in
    plain) label="tbntp, plain NTP" ;;
    nts) label="tbntp --nts" ;;
    chrony) label="chronyd -Q, NTS (chrony's client)" ;;
  esac
  n=$(wc -l <$f.txt)
  printf '%-34s %6s %12s %12s %12s\n' "$label" "$n" "$(median <$f.txt | us)" \
    "$(sort -g $f.txt | head -1 | us)" "$(sort -g $f.txt | tail -1 | us)"
done

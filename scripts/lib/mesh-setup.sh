# shellcheck shell=bash
# scripts/lib/mesh-setup.sh: the local time mesh of issue 6, shared by scripts/demo and
# tests/test_acceptance.sh (source it; it defines ms_* functions and variables only).
#
#   ms_init WORK BIN BASE        WORK: an empty directory this owns; BIN: tbnode, tbcert,
#                                tbroughtime, tbntp; BASE: 127.0.0.BASE..BASE+9 are ours.
#                                Picks three UDP ports free on every address (ss), so two
#                                copies (two worktrees, test and demo) can run at once
#   ms_start                     CA and certificates, chronyds, Roughtime key, hosts files,
#                                node configs, then the three nodes
#   ms_stop                      stops everything ms_start started (SIGTERM, then SIGKILL),
#                                removes libfaketime's leftovers and WORK; safe to call twice
#
# The mesh (b = BASE):
#   node eu   127.0.0.b:ms_port     region eu, also the Roughtime server on 127.0.0.b:MS_RT_PORT
#   node us   127.0.0.b+1:ms_port   region us, seed: eu
#   node ap   127.0.0.b+2:ms_port   region ap, seed: eu
#   (chronyds on MS_NTP_PORT)
#   ntp1.test  chronyd 127.0.0.b+3   honest
#   ntp2.test  chronyd 127.0.0.b+4   honest, also serving NTS (KE on MS_NTS_PORT, TCP)
#   nts.test   the same chronyd by another name, measured over NTS (certificate from a CA of
#              the mesh's own, made with certtool), so it is a source of its own
#   liar.test  chronyd 127.0.0.b+5   libfaketime +2 s: lies to every region
#   split.test chronyd 127.0.0.b+6 (honest) in eu's hosts file,
#              chronyd 127.0.0.b+7 (libfaketime +2 s) in us's and ap's: lies to two regions
#   rt.test    the Roughtime server in node eu (radius 1 s), a source of every node
# Every node has its own hosts file mapping these names, so "split.test" resolves differently
# per region, as a GeoDNS name can.

MS_NODES=(eu us ap)
MS_SHIFT=+2s
MS_MINPOLL=${MS_MINPOLL:-0} # log2 s: 1 s polls, data within seconds and little load
MS_MAXPOLL=${MS_MAXPOLL:-0}

MS_NTS_SERVER=ntp2 # the chronyd that also serves NTS, as nts.test

# ms_free_ports: four consecutive UDP ports that no socket uses on any address, from a random
# start (what a later bind could still race with is a copy of this same script).
ms_free_ports() {
  local p used
  used=$(ss -Huan 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    echo "$used" | grep -qxE "$p|$((p + 1))|$((p + 2))|$((p + 3))" || { echo "$p"; return 0; }
  done
  return 1
}

ms_init() {
  ms_work=$1 ms_bin=$2 ms_base=$3
  ms_pids=() ms_chrony_pids=()
  declare -gA ms_chrony_pid=()
  local p
  p=$(ms_free_ports) || { echo "mesh-setup: no free UDP ports" >&2; return 1; }
  ms_port=$p MS_NTP_PORT=$((p + 1)) MS_RT_PORT=$((p + 2)) MS_NTS_PORT=$((p + 3))
  ms_faketime=""
  local f
  for f in /usr/lib/*/faketime/libfaketime.so.1; do [ -e "$f" ] && ms_faketime=$f; done
}

ms_ip() { echo "127.0.0.$((ms_base + $1))"; }
ms_node_ip() { # node name -> its address
  local i
  for i in 0 1 2; do [ "${MS_NODES[$i]}" = "$1" ] && ms_ip "$i"; done
}
ms_state() { echo "$ms_work/$1/state"; }
ms_log() { echo "$ms_work/$1/log"; }

# ms_chrony NAME OFFSET_INDEX [SHIFT]: a chronyd on 127.0.0.b+OFFSET_INDEX:MS_NTP_PORT.
ms_chrony() {
  local name=$1 ip
  ip=$(ms_ip "$2")
  local dir="$ms_work/chrony-$name"
  mkdir -p "$dir"
  cat >"$dir/chrony.conf" <<EOF
port $MS_NTP_PORT
bindaddress $ip
local stratum 1
allow 127.0.0.0/8
cmdport 0
bindcmdaddress /
pidfile $dir/chronyd.pid
EOF
  if [ "$name" = "$MS_NTS_SERVER" ]; then
    cat >>"$dir/chrony.conf" <<EOF
ntsserverkey $ms_work/nts/server.key
ntsservercert $ms_work/nts/server.pem
ntsport $MS_NTS_PORT
ntsdumpdir $dir
EOF
  fi
  if [ -n "${3:-}" ]; then
    [ -n "$ms_faketime" ] || { echo "libfaketime not found (Debian package faketime)" >&2; return 1; }
    # Preloaded directly: the faketime wrapper forks and would not pass SIGTERM on.
    LD_PRELOAD=$ms_faketime FAKETIME=$3 DONT_FAKE_MONOTONIC=1 \
      chronyd -x -d -u root -f "$dir/chrony.conf" >"$dir/log" 2>&1 &
  else
    chronyd -x -d -u root -f "$dir/chrony.conf" >"$dir/log" 2>&1 &
  fi
  ms_chrony_pids+=($!)
  ms_chrony_pid[$name]=$!
  echo "$ip:$MS_NTP_PORT" >"$dir/addr"
}

# ms_chrony_stop NAME: stops that chronyd (a benchmark restarts one under libfaketime).
ms_chrony_stop() {
  local pid=${ms_chrony_pid[$1]:-} keep=() p
  [ -n "$pid" ] || return 0
  ms_kill "$pid"
  rm -f "/dev/shm/faketime_shm_$pid" "/dev/shm/sem.faketime_sem_$pid"
  for p in "${ms_chrony_pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  ms_chrony_pids=("${keep[@]}")
  unset "ms_chrony_pid[$1]"
}

ms_hosts_file() { # node -> its hosts file
  local node=$1 split=7
  [ "$node" = eu ] && split=6
  cat <<EOF
# hosts file of node $node (tbnode hosts_file): the names its sources are configured by
$(ms_ip 3) ntp1.test
$(ms_ip 4) ntp2.test
$(ms_ip 4) nts.test
$(ms_ip 5) liar.test
$(ms_ip "$split") split.test
$(ms_ip 0) rt.test
EOF
}

ms_node_conf() { # node -> its tbnode.conf
  local node=$1
  cat <<EOF
mode = "hybrid";
listen = "$(ms_node_ip "$node"):$ms_port";
cert = "node.crt";
key = "node.key";
ca = "ca.crt";
state_dir = "state";
ping_interval_ms = 250;
connect_timeout_ms = 3000;
hosts_file = "hosts";
sources = (
  { kind = "ntp"; address = "ntp1.test:$MS_NTP_PORT"; minpoll = $MS_MINPOLL; maxpoll = $MS_MAXPOLL; },
  { kind = "ntp"; address = "ntp2.test:$MS_NTP_PORT"; minpoll = $MS_MINPOLL; maxpoll = $MS_MAXPOLL; },
  { kind = "ntp"; address = "liar.test:$MS_NTP_PORT"; minpoll = $MS_MINPOLL; maxpoll = $MS_MAXPOLL; },
  { kind = "ntp"; address = "split.test:$MS_NTP_PORT"; minpoll = $MS_MINPOLL; maxpoll = $MS_MAXPOLL; },
  { kind = "nts"; address = "nts.test:$MS_NTP_PORT"; ntsport = $MS_NTS_PORT; ca_file = "$ms_work/nts/ca.pem"; minpoll = $MS_MINPOLL; maxpoll = $MS_MAXPOLL; },
  { kind = "roughtime"; address = "rt.test:$MS_RT_PORT"; public_key = "$ms_rt_pub"; }
);
EOF
  # MS_DASHBOARD=DIR: every node also serves HTTP (adr/0013) on its address, TCP port ms_port.
  if [ -n "${MS_DASHBOARD:-}" ]; then
    echo "http = { listen = \"$(ms_node_ip "$node"):$ms_port\"; dashboard = \"$MS_DASHBOARD\"; };"
  fi
  if [ "$node" = eu ]; then
    # Radius 1 s: with the default 3 s its interval would overlap the +2 s liars'.
    echo "roughtime = { listen = \"$(ms_node_ip eu):$MS_RT_PORT\"; key = \"rt.key\"; radius = 1; };"
  else
    echo "peers = ( \"eu@$(ms_node_ip eu):$ms_port\" );"
  fi
}

# ms_nts_pki: a CA and a certificate for nts.test (certtool, Debian package gnutls-bin).
ms_nts_pki() {
  local d="$ms_work/nts"
  mkdir -p "$d"
  printf 'cn = "mesh NTS CA"\nca\ncert_signing_key\nexpiration_days = 30\n' >"$d/ca.tmpl"
  printf 'cn = "nts.test"\ndns_name = "nts.test"\ntls_www_server\nsigning_key\nexpiration_days = 30\n' \
    >"$d/server.tmpl"
  {
    certtool -p --key-type ecdsa --curve secp256r1 --outfile "$d/ca.key" &&
      certtool -s --load-privkey "$d/ca.key" --template "$d/ca.tmpl" --outfile "$d/ca.pem" &&
      certtool -p --key-type ecdsa --curve secp256r1 --outfile "$d/server.key" &&
      certtool -c --load-privkey "$d/server.key" --load-ca-certificate "$d/ca.pem" \
        --load-ca-privkey "$d/ca.key" --template "$d/server.tmpl" --outfile "$d/server.pem"
  } >"$d/certtool.log" 2>&1
}

# Certificates, keys, hosts files and configs; nothing is started.
ms_prepare() {
  ms_nts_pki || { echo "mesh-setup: certtool failed ($ms_work/nts/certtool.log)" >&2; return 1; }
  "$ms_bin/tbcert" init-ca --dir "$ms_work/ca" --name accept-mesh >/dev/null || return 1
  local node
  for node in "${MS_NODES[@]}"; do
    "$ms_bin/tbcert" issue --ca "$ms_work/ca" --name "$node" --region "$node" \
      --ip "$(ms_node_ip "$node")" --key-type ed25519 --out "$ms_work/$node" >/dev/null || return 1
  done
  # An identity from the same CA for the forger (tests/tool_forge.c): valid, but not "eu".
  "$ms_bin/tbcert" issue --ca "$ms_work/ca" --name mallory --region nowhere \
    --key-type ed25519 --out "$ms_work/mallory" >/dev/null || return 1
  ms_rt_pub=$("$ms_bin/tbroughtime" keygen --out "$ms_work/eu/rt.key") || return 1
  for node in "${MS_NODES[@]}"; do
    ms_hosts_file "$node" >"$ms_work/$node/hosts"
    ms_node_conf "$node" >"$ms_work/$node/tbnode.conf"
  done
}

ms_start_chronys() {
  ms_chrony ntp1 3 && ms_chrony ntp2 4 && ms_chrony liar 5 "$MS_SHIFT" &&
    ms_chrony split-eu 6 && ms_chrony split-shifted 7 "$MS_SHIFT"
}

ms_start_nodes() {
  local node
  for node in "${MS_NODES[@]}"; do
    "$ms_bin/tbnode" --config "$ms_work/$node/tbnode.conf" --log-level "${MS_LOG_LEVEL:-info}" \
      >"$ms_work/$node/log" 2>&1 &
    ms_pids+=($!)
  done
}

ms_start() {
  ms_prepare && ms_start_chronys && ms_start_nodes
}

ms_status_json() { # node -> its status --json, or nothing
  "$ms_bin/tbnode" status --json --state-dir "$(ms_state "$1")" 2>/dev/null
}

# TERM, up to 2 s, then KILL, for the given pids (all children of this shell).
ms_kill() {
  [ $# -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null
  local i p alive
  for i in $(seq 20); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null
  wait "$@" 2>/dev/null
}

ms_stop() {
  [ -n "${ms_work:-}" ] || return 0
  ms_kill "${ms_pids[@]}"
  ms_kill "${ms_chrony_pids[@]}"
  local p
  # libfaketime leaves its shared memory behind when its process is killed.
  for p in "${ms_chrony_pids[@]}"; do
    rm -f "/dev/shm/faketime_shm_$p" "/dev/shm/sem.faketime_sem_$p"
  done
  ms_pids=() ms_chrony_pids=()
  rm -rf "$ms_work"
  ms_work=""
}

# What the cross-check must conclude about each source, on every node: "kind name verdict".
MS_EXPECT=("ntp liar.test falseticker" "ntp split.test inconsistent"
  "ntp ntp1.test ok" "ntp ntp2.test ok" "ntp nts.test ok" "roughtime rt.test ok")

# ms_verdict FILE KIND NAME: "verdict<TAB>evidence count" of the source configured as NAME or
# NAME:PORT in a saved status --json ("absent 0" when there is none).
ms_verdict() {
  [ -s "$1" ] || { printf 'no status\t0\n'; return; }
  jq -r --arg k "$2" --arg h "$3" '[.verdicts[]? | select(.kind == $k and
      (.name == $h or (.name | startswith($h + ":"))))][0]
    | if . == null then "absent\t0" else "\(.verdict)\t\(.evidence | length)" end' "$1" 2>/dev/null ||
    printf 'no status\t0\n'
}

# ms_verdict_table DIR: one block per node from DIR/status-NODE.json: every verdict with the
# time (UTC) it has been shown since, its evidence count and reason, then the measurement counters.
ms_verdict_table() {
  local node f
  for node in "${MS_NODES[@]}"; do
    f="$1/status-$node.json"
    if [ ! -s "$f" ]; then
      printf '%s: no status\n' "$node"
      continue
    fi
    jq -r --arg n "$node" '
      "node \($n) (region \(.region)): consensus " +
        (if .consensus == null then "none" else
          "\(.consensus.offset_ns / 1e6 * 1000 | round / 1000) ms ± \(.consensus.uncertainty_ns / 1e6 * 1000 | round / 1000) ms (\(.consensus.agree) of \(.consensus.votes) agree)" end),
      (.verdicts[]? | "  \(.kind | .[0:9] | . + " " * (10 - length))\(.name | .[0:22] | . + " " * (23 - length))\(.verdict_text | . + " " * (28 - length))\(.since // "" | .[11:19] | . + " " * (9 - length))\(.evidence | length | tostring | . + " " * (4 - length))\(.reason | .[0:90])"),
      "  measurements: sent \(.measurements.sent), accepted \(.measurements.accepted), dropped " +
        ([.measurements.dropped | to_entries[] | select(.value > 0) | "\(.key)=\(.value)"] | if length == 0 then "none" else join(" ") end)' "$f"
  done
}

# ms_verdict_matrix DIR: one row per expected source, one column per node (from the saved
# status files), the verdict each node gives it and, at the end, what it should be.
ms_verdict_matrix() {
  local e kind name want node got
  printf '%-12s' source
  for node in "${MS_NODES[@]}"; do printf '%-29s' "$node"; done
  printf '%s\n' expected
  for e in "${MS_EXPECT[@]}"; do
    read -r kind name want <<<"$e"
    printf '%-12s' "$name"
    for node in "${MS_NODES[@]}"; do
      got=$(ms_verdict "$1/status-$node.json" "$kind" "$name")
      printf '%-29s' "${got%%$'\t'*}"
    done
    printf '%s\n' "$want"
  done
}

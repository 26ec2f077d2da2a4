#!/usr/bin/env bash
# Master/slave replication, SYNC_MASTER against ASYNC_MASTER, the official Apache RocketMQ
# broker (4.9.7) beside Petrel in one run on this machine, driven by the same benchmark program
# (bench/java/client, on the official Java client 4.9.8).
#
#   bash bench/replication.sh                 # full run: 20 s windows after a 5 s warm-up
#   bash bench/replication.sh --quick         # 5 s windows after a 2 s warm-up (a smoke run)
#   options: --duration S --warmup S; --threads N (default 32); --size BYTES (default 1024);
#   --roles "ASYNC_MASTER SYNC_MASTER" (which master roles, in that order); --only "official
#   petrel" (which brokers, in that order); --tmp DIR (where the stores go); --keep (leave the
#   temporary directory and its logs); --no-cargo (use the petrel binary already in
#   target/release); BENCH_JAVA_HOME (default: the JDK 17 in /usr/lib/jvm)
#
# For each master role and, inside it, each broker in turn, on fresh stores in a temporary
# directory, all with flushDiskType ASYNC_FLUSH:
#   - a name server, a master (brokerName broker-a, brokerId 0, brokerRole ROLE) and a slave
#     (brokerId 1, brokerRole SLAVE) that finds its master through the name server;
#     official: NamesrvStartup + two BrokerStartup; Petrel: `petrel namesrv` + two
#     `petrel broker` with TOML files;
#   - waits until the slave's HA connection to the master is up, then a probe (1 thread, 200
#     sends) that must get SEND_OK for every send (under SYNC_MASTER that means the slave
#     confirmed them);
#   - the producer at --threads threads, --size-byte bodies, synchronous sends, measured after a
#     warm-up: TPS, average / p50 / p99 / max RT, the master's + slave's CPU per message
#     (utime+stime from /proc/PID/stat over the window; the name server is not counted), the
#     client JVM's CPU per message, and the HA stream's rate (bytes acknowledged on the
#     master's HA port, from `ss -ti`, sampled each second: the median 1 s rate while sending).
# First it measures the raw disk and loopback TCP (lib.sh's print_raw_limits).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
# stop_pid, stop_all, wait_port, pick_port, print_machine, print_raw_limits, field,
# official_home, start_official_namesrv, start_official_broker, ha_bytes, ha_connections
. "$here/lib.sh"

duration=20
warmup=5
threads=32
size=1024
only="official petrel"
roles="ASYNC_MASTER SYNC_MASTER"
cargo_build=1
keep=0
tmp_parent="${TMPDIR:-/tmp}"
java_home="${BENCH_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) duration=5; warmup=2 ;;
    --duration) duration="$2"; shift ;;
    --warmup) warmup="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --size) size="$2"; shift ;;
    --only) only="$2"; shift ;;
    --roles) roles="$2"; shift ;;
    --tmp) tmp_parent="$2"; shift ;;
    --no-cargo) cargo_build=0 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

java="$java_home/bin/java"
hz="$(getconf CLK_TCK)"
topic=BenchReplication

work="$(mktemp -d "$tmp_parent/petrel-replication.XXXXXX")"
results="$work/results.tsv"
: >"$results"
pids=()

cleanup() {
  # Subshells run this trap too; only the script itself owns the servers and the directory.
  [ "$BASHPID" = "$$" ] || return 0
  stop_all
  if [ "$keep" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ build

echo "== build"
bash "$here/java/build.sh"
server_cp="$(cat "$here/java/servers/target/classpath.txt")"
client_cp="$here/java/client/target/classes:$(cat "$here/java/client/target/classpath.txt")"
[ "$cargo_build" = 0 ] || (cd "$root" && cargo build --release -p petrel --bin petrel)
petrel="$root/target/release/petrel"

client() {
  "$java" -Xms1g -Xmx1g -cp "$client_cp" petrel.bench.Bench "$@"
}

# ------------------------------------------------------------------ machine and raw limits

echo "== machine"
print_machine

echo "== raw limits"
print_raw_limits client

# ------------------------------------------------------------------ the servers

# Each start_* sets namesrv_addr, master_pid, slave_pid, ha_port (the master's HA port) and
# cpu_pids (master,slave).

start_official() {
  local role="$1" ns_port m_port s_port name id port brole home
  # The broker also listens on listenPort - 2 (VIP channel) and listenPort + 1 (HA: 4.9.7's
  # BrokerStartup sets haListenPort to listenPort + 1 whatever the properties say).
  pick_port ns_port
  pick_port m_port 2 1
  pick_port s_port 2 1
  home="$work/official-namesrv"
  official_home "$home"
  echo "listenPort=$ns_port" >"$home/conf/namesrv.properties"
  start_official_namesrv "$home" "$home/conf/namesrv.properties" "$work/official-namesrv.out"
  wait_port "$ns_port" "$started_pid" official-namesrv
  namesrv_addr="127.0.0.1:$ns_port"
  for name in master slave; do
    if [ "$name" = master ]; then
      id=0 port="$m_port" brole="$role"
    else
      id=1 port="$s_port" brole=SLAVE
    fi
    home="$work/official-$name"
    official_home "$home"
    mkdir -p "$home/store"
    # distribution/conf/broker.conf's keys (and those of 2m-2s-sync/broker-a*.properties),
    # with the role, ports and store of this run. brokerIP2 is the address the master
    # registers for its HA port; the slave's brokerIP1/2 only keep it on loopback too.
    cat >"$home/conf/broker.conf" <<EOF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=$id
deleteWhen=04
fileReservedTime=48
brokerRole=$brole
flushDiskType=ASYNC_FLUSH
namesrvAddr=$namesrv_addr
brokerIP1=127.0.0.1
brokerIP2=127.0.0.1
listenPort=$port
storePathRootDir=$home/store
storePathCommitLog=$home/store/commitlog
EOF
    start_official_broker "$home" "$home/conf/broker.conf" "$work/official-$name.out"
    wait_port "$port" "$started_pid" "official-$name"
    if [ "$name" = master ]; then master_pid="$started_pid"; else slave_pid="$started_pid"; fi
  done
  ha_port=$((m_port + 1))
  cpu_pids="$master_pid,$slave_pid"
}

start_petrel() {
  local role="$1" ns_port m_port m_ha s_port s_ha name id port ha brole dir
  pick_port ns_port
  pick_port m_port
  pick_port m_ha
  pick_port s_port
  pick_port s_ha
  "$petrel" namesrv --listen "127.0.0.1:$ns_port" >"$work/petrel-namesrv.out" 2>&1 &
  pids+=("$!")
  wait_port "$ns_port" "$!" petrel-namesrv
  namesrv_addr="127.0.0.1:$ns_port"
  for name in master slave; do
    if [ "$name" = master ]; then
      id=0 port="$m_port" ha="$m_ha" brole="$role"
    else
      id=1 port="$s_port" ha="$s_ha" brole=SLAVE
    fi
    dir="$work/petrel-$name"
    mkdir -p "$dir/data"
    cat >"$dir/broker.toml" <<EOF
brokerName = "broker-a"
brokerId = $id
brokerRole = "$brole"
haListenPort = $ha
flushDiskType = "ASYNC_FLUSH"
metricsExporterType = "DISABLE"
EOF
    "$petrel" broker --namesrv "$namesrv_addr" --data "$dir/data" --listen "127.0.0.1:$port" \
      --grpc-listen off --config "$dir/broker.toml" >"$work/petrel-$name.out" 2>&1 &
    started_pid=$!
    pids+=("$started_pid")
    wait_port "$port" "$started_pid" "petrel-$name"
    if [ "$name" = master ]; then master_pid="$started_pid"; else slave_pid="$started_pid"; fi
  done
  ha_port="$m_ha"
  cpu_pids="$master_pid,$slave_pid"
}

stop_servers() {
  stop_all
  rm -rf "$work"/official-* "$work"/petrel-*
}

# Up to 60 s for the slave's HA connection to the master; fails with the logs if it never comes.
wait_slave_connected() {
  local sys="$1"
  for _ in $(seq 1 120); do
    if [ "$(ha_connections "$ha_port")" -ge 1 ]; then return 0; fi
    for p in "$master_pid" "$slave_pid"; do
      kill -0 "$p" 2>/dev/null || { echo "$sys: a broker (pid $p) exited" >&2; exit 1; }
    done
    sleep 0.5
  done
  echo "$sys: the slave did not connect to the master's HA port $ha_port in 60 s; logs:" >&2
  tail -n 20 "$work/$sys-master.out" "$work/$sys-slave.out" >&2 || true
  exit 1
}

# ------------------------------------------------------------------ the cases

run_client() { # label args... ; the client's output goes to a log, its RESULT line into $r
  local label="$1"
  shift
  if ! client "$@" hz="$hz" cpuPids="$cpu_pids" rssPids="$cpu_pids" namesrv="$namesrv_addr" \
    >"$work/$label.log" 2>&1; then
    echo "client $label failed:" >&2
    tail -20 "$work/$label.log" >&2
    exit 1
  fi
  r="$(grep '^RESULT' "$work/$label.log")"
}

# Probes (1 thread, 200 sends; the first also creates the topic with 8 queues) until every send
# of one probe is SEND_OK: under SYNC_MASTER, until the slave confirms. Up to 10 probes.
probe_until_in_sync() {
  local sys="$1" role="$2" i
  for i in $(seq 1 10); do
    run_client "$sys-$role-probe$i" produce topic="$topic" threads=1 size="$size" until=200 queues=8
    if [ "$(field failed <<<"$r")" = 0 ] && [ "$(field not_ok <<<"$r")" = 0 ]; then
      echo "probe $i: $r"
      return 0
    fi
    echo "probe $i not all SEND_OK yet: $r"
    grep -m1 '^send failed' "$work/$sys-$role-probe$i.log" || true
    sleep 2
  done
  echo "$sys $role: no probe got SEND_OK for every send; logs in $work" >&2
  keep=1
  exit 1
}

# Samples "SECONDS BYTES" of the master's HA connection each second into FILE, in the
# background (its pid joins `pids`, so stop_all ends it).
start_ha_sampler() {
  local file="$1"
  (
    while :; do
      echo "$(date +%s.%N) $(ha_bytes "$ha_port")"
      sleep 1
    done
  ) >"$file" 2>/dev/null &
  sampler_pid=$!
  pids+=("$sampler_pid")
}

# The median of the 1 s rates (MB/s, 10^6 bytes) in a sampler's FILE, over the seconds in which
# bytes moved.
ha_rate() {
  awk 'NR > 1 && $2 > pb { r = ($2 - pb) / ($1 - pt) / 1e6; print r }
       { pt = $1; pb = $2 }' "$1" | sort -n |
    awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else printf "%.1f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

record() { # role system result-line ha-rate
  local role="$1" sys="$2" r="$3" ha="$4" load
  load="$(cut -d' ' -f1 /proc/loadavg)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$role" "$sys" \
    "$(field tps <<<"$r")" "$(field avg_ms <<<"$r")" "$(field p50_ms <<<"$r")" \
    "$(field p99_ms <<<"$r")" "$(field max_ms <<<"$r")" "$(field server_cpu_us <<<"$r")" \
    "$(field client_cpu_us <<<"$r")" "$ha" "$(field failed <<<"$r")" "$(field not_ok <<<"$r")" \
    "$load" >>"$results"
}

# Role outside, broker inside: the two brokers of a pair run a minute or two apart, so the
# Petrel / official ratios suffer less from the shared machine's drift.
for role in $roles; do
  for sys in $only; do
    echo "== $sys, $role master + SLAVE (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    if [ "$sys" = official ]; then start_official "$role"; else start_petrel "$role"; fi
    wait_slave_connected "$sys"
    probe_until_in_sync "$sys" "$role"
    start_ha_sampler "$work/$sys-$role-ha.txt"
    run_client "$sys-$role-p$threads" produce topic="$topic" threads="$threads" size="$size" \
      warmup="$warmup" duration="$duration" queues=8
    stop_pid "$sampler_pid"
    ha="$(ha_rate "$work/$sys-$role-ha.txt")"
    echo "produce, $threads threads: $r ha_stream_mb_s=$ha"
    # The client prints the first failed send (a thread then backs off 3 s, as the official
    # benchmark does); worth seeing when `failed` is not 0.
    grep -m1 '^send failed' "$work/$sys-$role-p$threads.log" || true
    record "$role" "$sys" "$r" "$ha"
    stop_servers
  done
done

# ------------------------------------------------------------------ the tables

echo
echo "== results ($size-byte bodies, $threads threads, synchronous sends, ASYNC_FLUSH, ${duration}s windows after ${warmup}s warm-up)"
echo
echo "| master role | broker | TPS | avg RT ms | p50 RT ms | p99 RT ms | max RT ms | master+slave CPU µs/msg | client CPU µs/msg | HA stream MB/s | failed | not SEND_OK | load |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 }' "$results"
echo
echo "SYNC_MASTER against ASYNC_MASTER, each broker on its own (TPS: SYNC / ASYNC, the target is >= 0.80; p99 and CPU per message: SYNC / ASYNC, lower is better):"
echo
echo "| broker | ASYNC TPS | SYNC TPS | SYNC / ASYNC TPS | >= 80 % | ASYNC p99 ms | SYNC p99 ms | SYNC / ASYNC p99 | SYNC / ASYNC CPU per message |"
echo "|---|---|---|---|---|---|---|---|---|"
awk -F'\t' '
  function r(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "n/a" }
  { tps[$1 SUBSEP $2] = $3; p99[$1 SUBSEP $2] = $6; cpu[$1 SUBSEP $2] = $8; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
  END {
    for (i = 1; i <= n; i++) {
      s = order[i]; a = "ASYNC_MASTER" SUBSEP s; y = "SYNC_MASTER" SUBSEP s
      if (!(a in tps) || !(y in tps)) continue
      ok = (tps[a] > 0) ? ((tps[y] / tps[a] >= 0.8) ? "yes" : "no") : "n/a"
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, tps[a], tps[y], r(tps[y], tps[a]), ok,
        p99[a], p99[y], r(p99[y], p99[a]), r(cpu[y], cpu[a])
    }
  }' "$results"
echo
echo "Petrel against the official broker, same master role (TPS: Petrel / official, higher is better; p99 and CPU per message: official / Petrel, higher is better for Petrel):"
echo
echo "| master role | TPS | p99 RT | master+slave CPU per message |"
echo "|---|---|---|---|"
awk -F'\t' '
  function r(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f×", a / b) : "n/a" }
  $2 == "official" { tps[$1] = $3; p99[$1] = $6; cpu[$1] = $8; order[++n] = $1 }
  $2 == "petrel" { ptps[$1] = $3; pp99[$1] = $6; pcpu[$1] = $8 }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; if (!(k in ptps)) continue
      printf "| %s | %s | %s | %s |\n", k, r(ptps[k], tps[k]), r(p99[k], pp99[k]), r(cpu[k], pcpu[k])
    }
  }' "$results"

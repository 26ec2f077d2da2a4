#!/usr/bin/env bash
# The official Apache RocketMQ broker beside Petrel, in one run on this machine, driven by the
# same benchmark programs (bench/java/client, on the official Java client 4.9.8).
#
#   bash bench/compare.sh                 # full run: 30 s cases, 3,000,000-message backlog
#   bash bench/compare.sh --quick         # 5 s cases, 300,000-message backlog (a smoke run)
#   bash bench/compare.sh --duration 60 --warmup 10 --backlog 4000000 --only petrel
#   options: --flush "ASYNC_FLUSH SYNC_FLUSH" (which, in that order); --only "official petrel"
#   (which brokers, in that order); --size BYTES; --tmp DIR (where the stores go); --keep
#   (leave the temporary directory and its logs); --no-cargo (use the petrel binary already in
#   target/release); --no-tx (skip the transactional cases); --batch N (also 32 threads each
#   sending N messages per call, the client's send(Collection), SEND_BATCH_MESSAGE; TPS counts
#   messages, RT is per call); BENCH_JAVA_HOME (default: the JDK 17 in /usr/lib/jvm)
#
# For ASYNC_FLUSH and then SYNC_FLUSH, each broker in turn (the official name server + broker
# 4.9.7, then `petrel standalone`), each on a fresh store in a temporary directory:
#   - the producer at 1 and 32 threads, 1 KiB bodies, synchronous sends, measured after a
#     warm-up: TPS, average / p50 / p99 / max RT;
#   - the same with a TransactionMQProducer whose local transaction commits at once (the
#     official TransactionProducer's default): a half message, then END_TRANSACTION;
#   - ASYNC_FLUSH only: a fill (64 threads, not measured) to a backlog of at least --backlog
#     messages, then one push consumer (20 threads) draining it from the first offset:
#     messages per second.
# Each case also reports the servers' CPU per message (utime+stime from /proc/PID/stat over the
# window; for the official broker that of the broker and the name server, Petrel's standalone is
# both in one process), the client JVM's CPU per message, and the servers' RSS at the end of
# the window (RssAnon and VmRSS from /proc/PID/status, summed the same way).
# First it measures the raw disk (dd oflag=direct; fio too if installed) and loopback TCP.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
# stop_pid, stop_all, wait_port, print_machine, print_raw_limits, field
. "$here/lib.sh"

duration=30
warmup=5
backlog=3000000
size=1024
only="official petrel"
flushes="ASYNC_FLUSH SYNC_FLUSH"
cargo_build=1
keep=0
tx=1
batch=0
tmp_parent="${TMPDIR:-/tmp}"
java_home="${BENCH_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) duration=5; warmup=2; backlog=300000 ;;
    --duration) duration="$2"; shift ;;
    --warmup) warmup="$2"; shift ;;
    --backlog) backlog="$2"; shift ;;
    --size) size="$2"; shift ;;
    --only) only="$2"; shift ;;
    --flush) flushes="$2"; shift ;;
    --tmp) tmp_parent="$2"; shift ;;
    --no-cargo) cargo_build=0 ;;
    --keep) keep=1 ;;
    --no-tx) tx=0 ;;
    --batch) batch="$2"; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

java="$java_home/bin/java"
hz="$(getconf CLK_TCK)"
# Ports away from the defaults, which other people's brokers on a shared machine may hold.
official_ns_port=39876
official_broker_port=40911 # the broker also listens on 40909 (VIP) and 40912 (HA)
petrel_ns_port=49876
petrel_broker_port=50911
# Not BenchmarkTest: the 4.9.x client refuses to create that one (a system topic), and the
# official broker makes it with 1,024 queues at start-up. 8 queues on both.
topic=BenchCompare

work="$(mktemp -d "$tmp_parent/petrel-compare.XXXXXX")"
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

# ------------------------------------------------------------------ build

echo "== build"
bash "$here/java/build.sh"
server_cp="$(cat "$here/java/servers/target/classpath.txt")"
client_cp="$here/java/client/target/classes:$(cat "$here/java/client/target/classpath.txt")"
[ "$cargo_build" = 0 ] || (cd "$root" && cargo build --release -p petrel)
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

start_official() {
  local flush="$1" home="$work/official-home"
  mkdir -p "$work/official-store" "$work/logs"
  # conf/logback_*.xml in ROCKETMQ_HOME: warnings only, to a file (bench/lib.sh).
  official_home "$home"
  cat >"$home/conf/namesrv.properties" <<EOF
listenPort=$official_ns_port
EOF
  # distribution/conf/broker.conf's keys, with the flush mode, ports and store for this run.
  cat >"$home/conf/broker.conf" <<EOF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
deleteWhen=04
fileReservedTime=48
brokerRole=ASYNC_MASTER
flushDiskType=$flush
namesrvAddr=127.0.0.1:$official_ns_port
brokerIP1=127.0.0.1
listenPort=$official_broker_port
storePathRootDir=$work/official-store
storePathCommitLog=$work/official-store/commitlog
EOF
  # JVM options of distribution/bin/runserver.sh and runbroker.sh (4.9.7) for JDK 9+, with the
  # broker's heap at 4 GiB instead of 8 GiB; GC logs into the run's directory.
  # 4.9.7 predates JDK 17 (none older is installed here): without these the store cannot unmap
  # its files through DirectByteBuffer internals and fails at shutdown. They change no timing.
  local opens=(--add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED)
  local common=(-Duser.home="$work" -Drocketmq.home.dir="$home" -cp "$home/conf:$server_cp")
  "$java" -server -Xms4g -Xmx4g -XX:MetaspaceSize=128m -XX:MaxMetaspaceSize=320m \
    -XX:+UseG1GC -XX:G1HeapRegionSize=16m -XX:G1ReservePercent=25 \
    -XX:InitiatingHeapOccupancyPercent=30 -XX:SoftRefLRUPolicyMSPerMB=0 \
    "-Xlog:gc*:file=$work/logs/namesrv_gc_%p.log:time,tags:filecount=5,filesize=30M" \
    -XX:-OmitStackTraceInFastThrow -XX:-UseLargePages "${common[@]}" \
    org.apache.rocketmq.namesrv.NamesrvStartup -c "$home/conf/namesrv.properties" \
    >"$work/namesrv.out" 2>&1 &
  ns_pid=$!
  pids+=("$ns_pid")
  wait_port "$official_ns_port" "$ns_pid" namesrv
  "$java" -server -Xms4g -Xmx4g \
    -XX:+UseG1GC -XX:G1HeapRegionSize=16m -XX:G1ReservePercent=25 \
    -XX:InitiatingHeapOccupancyPercent=30 -XX:SoftRefLRUPolicyMSPerMB=0 \
    "-Xlog:gc*:file=$work/logs/broker_gc_%p.log:time,tags:filecount=5,filesize=30M" \
    -XX:-OmitStackTraceInFastThrow -XX:+AlwaysPreTouch -XX:MaxDirectMemorySize=15g \
    -XX:-UseLargePages -XX:-UseBiasedLocking "${opens[@]}" "${common[@]}" \
    org.apache.rocketmq.broker.BrokerStartup -c "$home/conf/broker.conf" \
    >"$work/broker.out" 2>&1 &
  broker_pid=$!
  pids+=("$broker_pid")
  wait_port "$official_broker_port" "$broker_pid" broker
  namesrv_addr="127.0.0.1:$official_ns_port"
  cpu_pids="$broker_pid,$ns_pid"
  # Registration with the name server happens right after the broker listens.
  sleep 3
}

start_petrel() {
  local flush="$1"
  mkdir -p "$work/petrel-store"
  "$petrel" standalone --data "$work/petrel-store" \
    --namesrv-listen "127.0.0.1:$petrel_ns_port" --broker-listen "127.0.0.1:$petrel_broker_port" \
    --flush "$flush" --grpc-listen off >"$work/petrel.out" 2>&1 &
  broker_pid=$!
  pids+=("$broker_pid")
  wait_port "$petrel_broker_port" "$broker_pid" petrel
  namesrv_addr="127.0.0.1:$petrel_ns_port"
  cpu_pids="$broker_pid"
  sleep 1
}

stop_servers() {
  stop_all
  rm -rf "$work/official-store" "$work/official-home" "$work/petrel-store" "$work/logs"
}

# ------------------------------------------------------------------ the cases

record() { # system flush case result-line
  local sys="$1" flush="$2" case="$3" r="$4" load
  load="$(cut -d' ' -f1 /proc/loadavg)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sys" "$flush" "$case" \
    "$(field tps <<<"$r")" "$(field avg_ms <<<"$r")" "$(field p99_ms <<<"$r")" \
    "$(field max_ms <<<"$r")" "$(field server_cpu_us <<<"$r")" "$(field client_cpu_us <<<"$r")" \
    "$(field rss_anon_mib <<<"$r")" "$(field rss_mib <<<"$r")" \
    "$(field failed <<<"$r")$(field drained <<<"$r")" "$load" >>"$results"
}

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

# Flush mode outside, broker inside: the two brokers of a pair run minutes apart, not a whole
# half-run apart, so the ratios suffer less from the shared machine's drift.
for flush in $flushes; do
  for sys in $only; do
    echo "== $sys, $flush (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    if [ "$sys" = official ]; then
      start_official "$flush"
    else
      start_petrel "$([ "$flush" = SYNC_FLUSH ] && echo sync || echo async)"
    fi
    for threads in 1 32; do
      run_client "$sys-$flush-p$threads" produce topic="$topic" threads="$threads" size="$size" \
        warmup="$warmup" duration="$duration" queues=8
      echo "produce, $threads threads: $r"
      record "$sys" "$flush" "produce $threads threads" "$r"
    done
    if [ "$batch" -gt 1 ]; then
      run_client "$sys-$flush-b$batch" produce topic="$topic" threads=32 size="$size" \
        warmup="$warmup" duration="$duration" queues=8 batch="$batch"
      echo "produce, batch $batch, 32 threads: $r"
      record "$sys" "$flush" "batch $batch, 32 threads" "$r"
    fi
    if [ "$tx" = 1 ]; then
      for threads in 1 32; do
        run_client "$sys-$flush-tx$threads" produce topic="$topic" threads="$threads" size="$size" \
          warmup="$warmup" duration="$duration" queues=8 transactional=true
        echo "transactional produce, $threads threads: $r"
        record "$sys" "$flush" "transactional $threads threads" "$r"
      done
    fi
    if [ "$flush" = ASYNC_FLUSH ]; then
      run_client "$sys-fill" produce topic="$topic" threads=64 size="$size" until="$backlog" queues=8
      echo "fill: $r"
      run_client "$sys-consume" consume topic="$topic" group="bench_drain" timeout=900
      echo "consume: $r"
      record "$sys" "$flush" "consume (drain)" "$r"
    fi
    stop_servers
  done
done

# ------------------------------------------------------------------ the table

echo
echo "== results ($size-byte bodies, ${duration}s windows after ${warmup}s warm-up, backlog >= $backlog)"
echo
echo "| broker | flush | case | TPS | avg RT ms | p99 RT ms | max RT ms | server CPU µs/msg | client CPU µs/msg | server RssAnon MiB | server VmRSS MiB | failed / drained | load |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 }' "$results"
echo
echo "Petrel against the official broker, same case (TPS: Petrel / official, higher is better; RT and CPU: official / Petrel, higher is better for Petrel):"
echo
echo "| flush | case | TPS | avg RT | p99 RT | server CPU per message | client CPU per message |"
echo "|---|---|---|---|---|---|---|"
awk -F'\t' '
  function r(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f×", a / b) : "n/a" }
  $1 == "official" { k = $2 SUBSEP $3; tps[k] = $4; avg[k] = $5; p99[k] = $6; scpu[k] = $8; ccpu[k] = $9; order[++n] = k }
  $1 == "petrel" { k = $2 SUBSEP $3; ptps[k] = $4; pavg[k] = $5; pp99[k] = $6; pscpu[k] = $8; pccpu[k] = $9 }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; if (!(k in ptps)) continue
      split(k, kk, SUBSEP)
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", kk[1], kk[2], r(ptps[k], tps[k]),
        (avg[k] == "" ? "n/a" : r(avg[k], pavg[k])), (p99[k] == "" ? "n/a" : r(p99[k], pp99[k])),
        r(scpu[k], pscpu[k]), r(ccpu[k], pccpu[k])
    }
  }' "$results"
if [ "$tx" = 1 ]; then
  echo
  echo "Transactional TPS against plain TPS, each broker on its own (higher is better):"
  echo
  echo "| broker | flush | threads | plain TPS | transactional TPS | transactional / plain |"
  echo "|---|---|---|---|---|---|"
  awk -F'\t' '
    $3 ~ /^produce / { split($3, w, " "); plain[$1 SUBSEP $2 SUBSEP w[2]] = $4 }
    $3 ~ /^transactional / { split($3, w, " "); k = $1 SUBSEP $2 SUBSEP w[2]; txt[k] = $4; order[++n] = k }
    END {
      for (i = 1; i <= n; i++) {
        k = order[i]; split(k, kk, SUBSEP)
        ratio = (plain[k] > 0) ? sprintf("%.2f", txt[k] / plain[k]) : "n/a"
        printf "| %s | %s | %s | %s | %s | %s |\n", kk[1], kk[2], kk[3], plain[k], txt[k], ratio
      }
    }' "$results"
fi

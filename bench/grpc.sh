#!/usr/bin/env bash
# Petrel's gRPC endpoint (the RocketMQ 5.x protocol) beside its remoting port, in one run on this
# machine, each driven by an official Java client: bench/java's Bench on the 4.9.8 remoting
# client, bench/java5's GrpcBench on the 5.x gRPC client (rocketmq-client-java 5.2.0); and, the
# same cases, the official 5.x broker with its proxy in local mode (5.2.0 from Maven Central)
# as a peer.
#
#   bash bench/grpc.sh             # full run, about 13 minutes: 30 s windows, 100,000 backlog
#   bash bench/grpc.sh --quick     # 5 s windows, 20,000-message backlog (a smoke run)
#   bash bench/grpc.sh --only petrel --duration 60 --backlog 1000000
#   options: --only "petrel official" (which systems, in that order); --duration S; --warmup S
#   (each case's own, default 15); --server-warmup S (default 40, see below); --backlog N;
#   --size BYTES; --receive-threads N (GrpcBench receive threads, default 8);
#   --tmp DIR (where the stores go); --keep (leave the temporary directory and its logs);
#   --no-cargo (use the petrel binary already in target/release); BENCH_JAVA_HOME (default: the
#   JDK 17 in /usr/lib/jvm)
#
# For each system in turn, on a fresh store in a temporary directory, asynchronous flush, on
# ports found free:
#   - a warm-up round, not measured: remoting sends for S/2 seconds and gRPC sends for S
#     seconds, 32 threads, so that the official servers' JIT has compiled both paths before the
#     first measured case (Petrel gets the same round);
#   - send, 1 and then 32 threads sharing one producer, 1 KiB bodies, synchronous sends, topic
#     BenchGrpc (8 queues): remoting and then gRPC at each thread count, so the two protocols of
#     a pair run seconds apart; TPS, average / p99 / max RT after a warm-up;
#   - a fill (remoting, 64 threads, not measured) of --backlog messages into BenchDrain, then
#     the remoting drain (a push consumer, 20 threads, from the first offset) and then the gRPC
#     drain of the same backlog by another group (one SimpleConsumer, --receive-threads threads
#     each receiving up to 32 messages and acking each): messages per second.
# Each case reports the server's CPU per message (utime+stime from /proc/PID/stat over the
# window: Petrel's standalone is one process; the official broker, its in-process proxy and its
# name server are summed) and the client JVM's.
# First it measures the raw disk (dd oflag=direct; fio too if installed) and loopback TCP.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
# stop_pid, stop_all, wait_port, pick_port, print_machine, print_raw_limits, field
. "$here/lib.sh"

duration=30
warmup=15
server_warmup=40
# Small beside compare.sh's 3,000,000: a gRPC drain, one ack per message, is the slow case.
backlog=100000
size=1024
only="petrel official"
receive_threads=8
cargo_build=1
keep=0
tmp_parent="${TMPDIR:-/tmp}"
java_home="${BENCH_JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) duration=5; warmup=2; server_warmup=4; backlog=20000 ;;
    --duration) duration="$2"; shift ;;
    --warmup) warmup="$2"; shift ;;
    --server-warmup) server_warmup="$2"; shift ;;
    --backlog) backlog="$2"; shift ;;
    --size) size="$2"; shift ;;
    --only) only="$2"; shift ;;
    --receive-threads) receive_threads="$2"; shift ;;
    --tmp) tmp_parent="$2"; shift ;;
    --no-cargo) cargo_build=0 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

java="$java_home/bin/java"
hz="$(getconf CLK_TCK)"
topic=BenchGrpc
drain_topic=BenchDrain

work="$(mktemp -d "$tmp_parent/petrel-grpc.XXXXXX")"
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
(cd "$here/java5" && mvn -B -q -Dstyle.color=never compile)
remoting_cp="$here/java/client/target/classes:$(cat "$here/java/client/target/classpath.txt")"
grpc_cp="$here/java5/client/target/classes:$(cat "$here/java5/client/target/classpath.txt")"
server_cp="$(cat "$here/java5/servers/target/classpath.txt")"
[ "$cargo_build" = 0 ] || (cd "$root" && cargo build --release -p petrel)
petrel="$root/target/release/petrel"

remoting_client() {
  "$java" -Xms1g -Xmx1g -cp "$remoting_cp" petrel.bench.Bench "$@"
}

grpc_client() {
  # The 5.x client's own log (rocketmq-client.log), warnings only, into the run's directory.
  "$java" -Xms1g -Xmx1g -Drocketmq.log.root="$work/client-logs" -Drocketmq.log.level=warn \
    -cp "$grpc_cp" petrel.bench.GrpcBench "$@"
}

# ------------------------------------------------------------------ machine and raw limits

echo "== machine"
print_machine

echo "== raw limits"
print_raw_limits remoting_client

# ------------------------------------------------------------------ the servers

start_petrel() {
  local ns_port broker_port grpc_port metrics_port
  pick_port ns_port
  pick_port broker_port 2 0 # the broker also takes listenPort-2 (VIP)
  pick_port grpc_port
  pick_port metrics_port
  mkdir -p "$work/petrel-store"
  "$petrel" standalone --data "$work/petrel-store" \
    --namesrv-listen "127.0.0.1:$ns_port" --broker-listen "127.0.0.1:$broker_port" \
    --grpc-listen "127.0.0.1:$grpc_port" --metrics-listen "127.0.0.1:$metrics_port" \
    --flush async >"$work/petrel.out" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_port "$broker_port" "$pid" petrel
  wait_port "$grpc_port" "$pid" petrel
  namesrv_addr="127.0.0.1:$ns_port"
  grpc_endpoint="127.0.0.1:$grpc_port"
  cpu_pids="$pid"
  sleep 1
}

start_official() {
  local home="$work/official-home" ns_port broker_port grpc_port remoting_port
  pick_port ns_port
  pick_port broker_port 2 1 # the broker also takes listenPort-2 (VIP) and listenPort+1 (HA)
  pick_port grpc_port
  pick_port remoting_port
  mkdir -p "$home/conf" "$work/official-store" "$work/logs"
  # The 5.x servers log through rocketmq-logback-classic, which reads
  # -Drmq.logback.configurationFile: warnings only, to a file, so logging is not what is measured.
  cat >"$home/conf/logback.xml" <<EOF
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$work/logs/servers.log</file>
    <encoder><pattern>%d %p %t - %m%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="FILE"/></root>
</configuration>
EOF
  echo "listenPort=$ns_port" >"$home/conf/namesrv.properties"
  # distribution/conf/broker.conf's keys, with the ports and store for this run.
  cat >"$home/conf/broker.conf" <<EOF
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
deleteWhen=04
fileReservedTime=48
brokerRole=ASYNC_MASTER
flushDiskType=ASYNC_FLUSH
namesrvAddr=127.0.0.1:$ns_port
brokerIP1=127.0.0.1
listenPort=$broker_port
storePathRootDir=$work/official-store
storePathCommitLog=$work/official-store/commitlog
EOF
  # distribution/conf/rmq-proxy.json's keys (local mode: the proxy runs the broker in its own
  # process), with this run's ports; the proxy's remoting port is not used here.
  cat >"$home/conf/rmq-proxy.json" <<EOF
{
  "rocketMQClusterName": "DefaultCluster",
  "namesrvAddr": "127.0.0.1:$ns_port",
  "grpcServerPort": $grpc_port,
  "remotingListenPort": $remoting_port
}
EOF
  # The JVM options of the 5.x distribution's runserver.sh (name server) and runbroker.sh (what
  # `mqbroker --enable-proxy` runs ProxyStartup -pm local with) for JDK 9+, both heaps at 4 GiB
  # as in bench/compare.sh; GC logs into the run's directory. The add-opens let the store unmap
  # its files on JDK 17 (the newest JDK installed here); they change no timing.
  local opens=(--add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED)
  local common=(-Duser.home="$work" -Drocketmq.home.dir="$home"
    -Drmq.logback.configurationFile="$home/conf/logback.xml" -cp "$home/conf:$server_cp")
  "$java" -server -Xms4g -Xmx4g -XX:MetaspaceSize=128m -XX:MaxMetaspaceSize=320m \
    -XX:+UseG1GC -XX:G1HeapRegionSize=16m -XX:G1ReservePercent=25 \
    -XX:InitiatingHeapOccupancyPercent=30 -XX:SoftRefLRUPolicyMSPerMB=0 \
    "-Xlog:gc*:file=$work/logs/namesrv_gc_%p.log:time,tags:filecount=5,filesize=30M" \
    -XX:-OmitStackTraceInFastThrow -XX:-UseLargePages "${common[@]}" \
    org.apache.rocketmq.namesrv.NamesrvStartup -c "$home/conf/namesrv.properties" \
    >"$work/namesrv.out" 2>&1 &
  local ns_pid=$!
  pids+=("$ns_pid")
  wait_port "$ns_port" "$ns_pid" namesrv
  "$java" -server -Xms4g -Xmx4g \
    -XX:+UseG1GC -XX:G1HeapRegionSize=16m -XX:G1ReservePercent=25 \
    -XX:InitiatingHeapOccupancyPercent=30 -XX:SoftRefLRUPolicyMSPerMB=0 \
    "-Xlog:gc*:file=$work/logs/broker_gc_%p.log:time,tags:filecount=5,filesize=30M" \
    -XX:-OmitStackTraceInFastThrow -XX:+AlwaysPreTouch -XX:MaxDirectMemorySize=15g \
    -XX:-UseLargePages "${opens[@]}" "${common[@]}" \
    org.apache.rocketmq.proxy.ProxyStartup -pm local -pc "$home/conf/rmq-proxy.json" \
    -bc "$home/conf/broker.conf" >"$work/proxy.out" 2>&1 &
  local proxy_pid=$!
  pids+=("$proxy_pid")
  wait_port "$broker_port" "$proxy_pid" proxy
  wait_port "$grpc_port" "$proxy_pid" proxy
  # ProxyStartup prints this once the broker and the gRPC server have started; the broker's
  # first registration with the name server (which the remoting clients' TBW102 route needs)
  # comes right after it starts.
  for _ in $(seq 1 240); do
    grep -q 'rocketmq-proxy startup successfully' "$work/proxy.out" && break
    kill -0 "$proxy_pid" 2>/dev/null || break
    sleep 0.5
  done
  grep -q 'rocketmq-proxy startup successfully' "$work/proxy.out" || {
    echo "the proxy did not start; its log:" >&2
    tail -30 "$work/proxy.out" >&2
    exit 1
  }
  namesrv_addr="127.0.0.1:$ns_port"
  grpc_endpoint="127.0.0.1:$grpc_port"
  cpu_pids="$proxy_pid,$ns_pid"
  sleep 5
}

stop_servers() {
  stop_all
  rm -rf "$work/official-store" "$work/official-home" "$work/petrel-store" "$work/logs"
}

# ------------------------------------------------------------------ the cases

record() { # system protocol case result-line
  local sys="$1" proto="$2" case="$3" r="$4" load
  load="$(cut -d' ' -f1 /proc/loadavg)"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sys" "$proto" "$case" \
    "$(field tps <<<"$r")" "$(field avg_ms <<<"$r")" "$(field p99_ms <<<"$r")" \
    "$(field max_ms <<<"$r")" "$(field server_cpu_us <<<"$r")" "$(field client_cpu_us <<<"$r")" \
    "$(field drained <<<"$r" | grep . || field failed <<<"$r")" "$load" >>"$results"
}

run() { # remoting|grpc label args... ; the client's output goes to a log, its RESULT line into $r
  local proto="$1" label="$2" client=remoting_client
  shift 2
  [ "$proto" = remoting ] || client=grpc_client
  if ! "$client" "$@" hz="$hz" cpuPids="$cpu_pids" rssPids="$cpu_pids" \
    >"$work/$label.log" 2>&1; then
    echo "client $label failed:" >&2
    tail -20 "$work/$label.log" >&2
    exit 1
  fi
  r="$(grep '^RESULT' "$work/$label.log")"
}

thread_s() { if [ "$1" = 1 ]; then echo thread; else echo threads; fi; }

for sys in $only; do
  echo "== $sys (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  if [ "$sys" = official ]; then start_official; else start_petrel; fi
  if [ "$server_warmup" -gt 0 ]; then
    # The remoting run creates the topic (8 queues) before the gRPC producer asks for its route.
    run remoting "$sys-warm-remoting" produce namesrv="$namesrv_addr" topic="$topic" threads=32 \
      size="$size" warmup=0 duration="$((server_warmup / 2))" queues=8
    run grpc "$sys-warm-grpc" produce endpoint="$grpc_endpoint" topic="$topic" threads=32 \
      size="$size" warmup=0 duration="$server_warmup"
    echo "server warm-up, not measured: gRPC $(field tps <<<"$r") sends/s at the end"
  fi
  for threads in 1 32; do
    # The remoting run creates the topic (8 queues) before the gRPC producer asks for its route.
    run remoting "$sys-remoting-p$threads" produce namesrv="$namesrv_addr" topic="$topic" \
      threads="$threads" size="$size" warmup="$warmup" duration="$duration" queues=8
    echo "remoting send, $threads threads: $r"
    record "$sys" remoting "send, $threads $(thread_s "$threads")" "$r"
    run grpc "$sys-grpc-p$threads" produce endpoint="$grpc_endpoint" topic="$topic" \
      threads="$threads" size="$size" warmup="$warmup" duration="$duration"
    echo "gRPC send, $threads threads: $r"
    record "$sys" gRPC "send, $threads $(thread_s "$threads")" "$r"
  done
  run remoting "$sys-fill" produce namesrv="$namesrv_addr" topic="$drain_topic" threads=64 \
    size="$size" until="$backlog" queues=8
  echo "fill: $r"
  run remoting "$sys-remoting-drain" consume namesrv="$namesrv_addr" topic="$drain_topic" \
    group=bench_drain timeout=900
  echo "remoting drain: $r"
  record "$sys" remoting "drain the backlog" "$r"
  drained_backlog="$(field backlog <<<"$r")"
  run grpc "$sys-grpc-drain" receive endpoint="$grpc_endpoint" topic="$drain_topic" \
    group=bench_grpc_drain backlog="$drained_backlog" threads="$receive_threads" batch=32 timeout=900
  echo "gRPC drain: $r"
  record "$sys" gRPC "drain the backlog" "$r"
  stop_servers
done

# ------------------------------------------------------------------ the table

echo
echo "== results ($size-byte bodies, ${duration}s windows after ${warmup}s warm-up, server warm-up ${server_warmup}s, backlog $backlog, ASYNC_FLUSH)"
echo
echo "| system | protocol | case | TPS | avg RT ms | p99 RT ms | max RT ms | server CPU µs/msg | client CPU µs/msg | failed / drained | load |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }' "$results"
echo
echo "gRPC against remoting, each system on its own (TPS and RT: gRPC / remoting; CPU per message: gRPC / remoting, the issue's target for send is at most 1.5×):"
echo
echo "| system | case | TPS | avg RT | p99 RT | server CPU per message | client CPU per message |"
echo "|---|---|---|---|---|---|---|"
awk -F'\t' '
  function r(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f×", a / b) : "n/a" }
  $2 == "remoting" { k = $1 SUBSEP $3; tps[k] = $4; avg[k] = $5; p99[k] = $6; scpu[k] = $8; ccpu[k] = $9; order[++n] = k }
  $2 == "gRPC" { k = $1 SUBSEP $3; gtps[k] = $4; gavg[k] = $5; gp99[k] = $6; gscpu[k] = $8; gccpu[k] = $9 }
  END {
    for (i = 1; i <= n; i++) {
      k = order[i]; if (!(k in gtps)) continue
      split(k, kk, SUBSEP)
      printf "| %s | %s | %s | %s | %s | %s | %s |\n", kk[1], kk[2], r(gtps[k], tps[k]),
        (avg[k] == "" ? "n/a" : r(gavg[k], avg[k])), (p99[k] == "" ? "n/a" : r(gp99[k], p99[k])),
        r(gscpu[k], scpu[k]), r(gccpu[k], ccpu[k])
    }
  }' "$results"
if grep -q '^official' "$results" && grep -q '^petrel' "$results"; then
  echo
  echo "Petrel against the official 5.2.0 broker + proxy, same protocol and case (TPS: Petrel / official, higher is better; RT and CPU: official / Petrel, higher is better for Petrel):"
  echo
  echo "| protocol | case | TPS | avg RT | p99 RT | server CPU per message | client CPU per message |"
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
fi

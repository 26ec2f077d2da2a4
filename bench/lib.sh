# Helpers shared by bench/compare.sh, bench/grpc.sh and bench/replication.sh (sourced, not run).
# They expect the caller's $work (the run's temporary directory) and $root (the repository), and
# a `pids` array of the servers the caller started; they stop only those pids.

# Stops one server: TERM, up to 30 s for it to exit, then KILL.
stop_pid() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done
  pids=()
}

# Waits (up to 60 s) until something listens on 127.0.0.1:PORT; fails with the log
# $work/WHAT.out if PID exits first.
wait_port() {
  local port="$1" pid="$2" what="$3"
  for _ in $(seq 1 240); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$what (pid $pid) exited during start-up; its log:" >&2
      tail -30 "$work/$what.out" >&2 || true
      exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.25
  done
  echo "$what did not listen on $port" >&2
  exit 1
}

# Ports handed out by pick_port in this run (nothing listens on them yet).
picked_ports=" "

# pick_port VAR [BELOW ABOVE]: sets VAR to a TCP port on 127.0.0.1 that nothing listens on and
# that this run has not picked, with BELOW ports under it and ABOVE over it free as well (the
# official broker also takes listenPort-2 and listenPort+1), away from the defaults that other
# people's servers on a shared machine may hold.
pick_port() {
  local var="$1" below="${2:-0}" above="${3:-0}" p q busy
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 30000))
    busy=0
    for q in $(seq $((p - below)) $((p + above))); do
      if [[ "$picked_ports" == *" $q "* ]] || ss -Hltn "sport = :$q" | grep -q .; then
        busy=1
        break
      fi
    done
    if [ "$busy" = 0 ]; then
      for q in $(seq $((p - below)) $((p + above))); do picked_ports+="$q "; done
      printf -v "$var" '%s' "$p"
      return 0
    fi
  done
  echo "no free port found" >&2
  exit 1
}

# The machine, the commit and the load, one line each.
print_machine() {
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "filesystem of $work: $(df -T "$work" | awk 'NR==2 {print $2" on "$1}')"
  echo "git: $(cd "$root" && git log -1 --format='%h %s' | cut -c1-80)$(cd "$root" && git diff --quiet HEAD -- crates || echo ' (+ uncommitted changes in crates/)')"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# dd's summary line as "SECONDS s, RATE".
dd_rate() { sed -n 's/.*copied, \([0-9.]*\) s, \(.*\)$/\1 s, \2/p'; }

# The raw disk (dd oflag=direct; fio too if installed) and loopback TCP; "$@" is the command
# that runs bench/java's Bench (its loopback mode prints the loopback line).
print_raw_limits() {
  echo "disk, 1 GiB in 1 MiB O_DIRECT writes (dd bs=1M count=1024 oflag=direct): $(dd if=/dev/zero of="$work/dd" bs=1M count=1024 oflag=direct 2>&1 | dd_rate)"
  echo "disk, 4 KiB O_DIRECT|O_DSYNC writes (dd bs=4k count=4000 oflag=direct,dsync): $(dd if=/dev/zero of="$work/dd" bs=4k count=4000 oflag=direct,dsync 2>&1 | dd_rate)"
  rm -f "$work/dd"
  if command -v fio >/dev/null; then
    fio --name=seq --filename="$work/fio" --size=1g --bs=1m --rw=write --direct=1 --ioengine=psync \
      --output-format=terse --terse-version=3 | awk -F';' '{printf "fio sequential 1 MiB direct writes: %.0f MB/s\n", $48*1024/1e6}'
    fio --name=sync --filename="$work/fio" --size=64m --bs=4k --rw=write --direct=1 --fdatasync=1 \
      --ioengine=psync --runtime=5 --time_based --output-format=terse --terse-version=3 |
      awk -F';' '{printf "fio 4 KiB writes + fdatasync each: %.0f IOPS\n", $49}'
    rm -f "$work/fio"
  fi
  "$@" loopback duration=3 | grep RESULT | sed 's/^RESULT mode=loopback /loopback (one TCP stream, 1 MiB writes; 1 KiB ping-pong, one connection): /'
}

# One field of a RESULT line: `field tps <<<"$r"`.
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

# ------------------------------------------------------------------ the official 4.9.7 servers
# For bench/replication.sh, which runs several official servers at once, each with its own
# ROCKETMQ_HOME and user.home (compare.sh still starts its single pair itself, with the same
# options). They expect $java and $server_cp (bench/java/servers/target/classpath.txt's
# contents) besides $work, append the new server to `pids` and set `started_pid`.

# official_home DIR: a ROCKETMQ_HOME whose conf/logback_*.xml log warnings only, to
# DIR/logs/*.log, so that logging is not what is measured.
official_home() {
  local home="$1" f
  mkdir -p "$home/conf" "$home/logs"
  for f in logback_namesrv.xml logback_broker.xml; do
    cat >"$home/conf/$f" <<XML
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$home/logs/$f.log</file>
    <encoder><pattern>%d %p %t - %m%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="FILE"/></root>
</configuration>
XML
  done
}

# start_official_namesrv HOME PROPERTIES OUT: the name server with runserver.sh's JVM options
# (4.9.7, JDK 9+), GC log in HOME/logs.
start_official_namesrv() {
  local home="$1" conf="$2" out="$3"
  "$java" -server -Xms4g -Xmx4g -XX:MetaspaceSize=128m -XX:MaxMetaspaceSize=320m \
    -XX:+UseG1GC -XX:G1HeapRegionSize=16m -XX:G1ReservePercent=25 \
    -XX:InitiatingHeapOccupancyPercent=30 -XX:SoftRefLRUPolicyMSPerMB=0 \
    "-Xlog:gc*:file=$home/logs/namesrv_gc_%p.log:time,tags:filecount=5,filesize=30M" \
    -XX:-OmitStackTraceInFastThrow -XX:-UseLargePages \
    -Duser.home="$home" -Drocketmq.home.dir="$home" -cp "$home/conf:$server_cp" \
    org.apache.rocketmq.namesrv.NamesrvStartup -c "$conf" >"$out" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
}

# start_official_broker HOME PROPERTIES OUT: the broker with runbroker.sh's JVM options (4.9.7,
# JDK 9+) but a 4 GiB heap instead of 8 GiB, and the two --add-opens JDK 17 needs to unmap
# store files at shutdown (they change no timing).
start_official_broker() {
  local home="$1" conf="$2" out="$3"
  "$java" -server -Xms4g -Xmx4g \
    -XX:+UseG1GC -XX:G1HeapRegionSize=16m -XX:G1ReservePercent=25 \
    -XX:InitiatingHeapOccupancyPercent=30 -XX:SoftRefLRUPolicyMSPerMB=0 \
    "-Xlog:gc*:file=$home/logs/broker_gc_%p.log:time,tags:filecount=5,filesize=30M" \
    -XX:-OmitStackTraceInFastThrow -XX:+AlwaysPreTouch -XX:MaxDirectMemorySize=15g \
    -XX:-UseLargePages -XX:-UseBiasedLocking \
    --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
    -Duser.home="$home" -Drocketmq.home.dir="$home" -cp "$home/conf:$server_cp" \
    org.apache.rocketmq.broker.BrokerStartup -c "$conf" >"$out" 2>&1 &
  started_pid=$!
  pids+=("$started_pid")
}

# ha_bytes PORT: bytes sent and acknowledged on the established TCP connections whose local
# port is PORT (a master's HA port: the commit log it streamed to its slaves), summed; 0 if none.
ha_bytes() {
  ss -Htin state established "( sport = :$1 )" |
    grep -o 'bytes_acked:[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }'
}

# ha_connections PORT: how many established TCP connections have local port PORT.
ha_connections() {
  ss -Htn state established "( sport = :$1 )" | grep -c . || true
}

#!/usr/bin/env bash
# Fetches the official RocketMQ 4.9.7 servers and builds the benchmark programs (client 4.9.8)
# from Maven Central. Leaves servers/target/classpath.txt, client/target/classes and
# client/target/classpath.txt for bench/compare.sh.
set -euo pipefail
cd "$(dirname "$0")"
mvn -B -q -Dstyle.color=never compile
test -s servers/target/classpath.txt
test -s client/target/classpath.txt

#!/usr/bin/env bash
# Fetches the official RocketMQ 4.9.7 name server and broker from Maven Central for the tests
# that run them beside Petrel (replication in both directions). The Maven module is the
# benchmark's (bench/java/servers); it leaves bench/java/servers/target/classpath.txt.
set -euo pipefail
cd "$(dirname "$0")/../../bench/java/servers"
mvn -B -q -Dstyle.color=never compile
test -s target/classpath.txt

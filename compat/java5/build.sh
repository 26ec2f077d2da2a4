#!/usr/bin/env bash
# Builds the scenario programs against the official RocketMQ 5.x Java client (gRPC) from Maven
# Central. Leaves target/classes and target/classpath.txt (the client's one shaded jar) for the
# cargo tests.
set -euo pipefail
cd "$(dirname "$0")"
mvn -B -q -Dstyle.color=never compile
test -s target/classpath.txt

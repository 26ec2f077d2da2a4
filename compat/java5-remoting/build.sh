#!/usr/bin/env bash
# Builds the scenario programs against the official RocketMQ 5.x remoting Java client and
# rocketmq-tools from Maven Central. Leaves target/classes and target/classpath.txt (the
# official jars) for the cargo tests.
set -euo pipefail
cd "$(dirname "$0")"
mvn -B -q -Dstyle.color=never compile
test -s target/classpath.txt

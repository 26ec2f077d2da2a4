#!/usr/bin/env bash
# Builds the Java scenario programs against the official client from Maven Central. Leaves
# target/classes and target/classpath.txt (the official jars) for the cargo tests.
set -euo pipefail
cd "$(dirname "$0")"
mvn -B -q -Dstyle.color=never compile
test -s target/classpath.txt

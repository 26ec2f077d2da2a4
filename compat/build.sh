#!/usr/bin/env bash
# Builds the programs that drive the official RocketMQ clients against Petrel, each part from
# its registry: Maven Central for Java (java: the 4.9.8 remoting client and mqadmin; servers:
# the official 4.9.7 name server and broker; java5: the 5.x gRPC client), the Go module proxy
# for Go, PyPI for Python (python: the 5.x gRPC client), the npm registry for Node.js (node:
# the 5.x gRPC client). Idempotent and quick when nothing changed; the cargo tests call it too,
# so a plain `cargo test` works as well.
# Usage: compat/build.sh [java|servers|go|java5|python|node]...   (no argument: every part)
set -euo pipefail
cd "$(dirname "$0")"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(java servers go java5 java5-remoting python node)
for part in "${parts[@]}"; do
  if [ -f "$part/build.sh" ]; then
    echo "== compat/$part"
    bash "$part/build.sh"
  fi
done

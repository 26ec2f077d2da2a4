#!/usr/bin/env bash
# Builds the programs that drive the official RocketMQ clients against Petrel, each part from
# its registry (Maven Central for Java, the Go module proxy for Go). Idempotent and quick when
# nothing changed; the cargo tests call it too, so a plain `cargo test` works as well.
# Usage: compat/build.sh [java|go]...   (no argument: every part)
set -euo pipefail
cd "$(dirname "$0")"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(java go)
for part in "${parts[@]}"; do
  if [ -f "$part/build.sh" ]; then
    echo "== compat/$part"
    bash "$part/build.sh"
  fi
done

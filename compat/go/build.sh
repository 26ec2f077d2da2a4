#!/usr/bin/env bash
# Builds the Go scenario program against the official client from the Go module proxy, at the
# versions go.mod and go.sum pin (-mod=readonly: a build never changes them). Leaves
# target/petrel-compat-go for the cargo tests. Go's caches make a second run quick.
set -euo pipefail
cd "$(dirname "$0")"
# The toolchain on the machine builds it; never fetch another one.
export GOTOOLCHAIN=local
mkdir -p target
go build -mod=readonly -buildvcs=false -trimpath -o target/petrel-compat-go .
test -x target/petrel-compat-go

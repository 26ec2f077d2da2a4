#!/usr/bin/env bash
# What the partition test (tests/tests/controller_partition.rs) needs on a fresh machine: the
# `ip` command (Debian's iproute2) to make network namespaces and veth pairs. The test itself
# runs only as root (CI does) and says it skipped otherwise. Quick when `ip` is there.
set -euo pipefail
if ! command -v ip >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "== apt-get install iproute2"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends iproute2
fi
ip -V

#!/usr/bin/env bash
# Installs the official RocketMQ 5.x Node.js client (npm rocketmq-client-nodejs, gRPC) at the
# versions package-lock.json pins (npm ci never changes the lock). Idempotent: quick when
# node_modules was installed from this very lock (the copy kept beside it).
set -euo pipefail
cd "$(dirname "$0")"
if ! cmp -s package-lock.json node_modules/.petrel-package-lock.json; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.petrel-package-lock.json
fi
node --check scenario.js

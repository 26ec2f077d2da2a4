#!/usr/bin/env bash
# What the dashboard's browser test (crates/cli/tests/dashboard_e2e.rs) needs on a fresh machine:
# Debian's chromium at /usr/bin/chromium (apt-get, as root or through sudo) and playwright-core
# from the npm registry at the version package-lock.json pins. Quick when both are there.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "== apt-get install chromium"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
fi
/usr/bin/chromium --version
echo "== npm ci (tests/dashboard)"
npm ci --no-audit --no-fund

#!/usr/bin/env bash
# Installs the official RocketMQ 5.x Python client (PyPI rocketmq-python-client, gRPC) into a
# venv of its own, target/venv, at the versions requirements.txt pins. Idempotent: quick when
# the venv already holds exactly those (the copy of requirements.txt it was built from).
set -euo pipefail
cd "$(dirname "$0")"
venv=target/venv
if [ -x "$venv/bin/python" ] && cmp -s requirements.txt "$venv/requirements.txt"; then
  "$venv/bin/python" -m py_compile scenario.py
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r requirements.txt
"$venv/bin/python" -c 'import rocketmq'
"$venv/bin/python" -m py_compile scenario.py
cp requirements.txt "$venv/requirements.txt"

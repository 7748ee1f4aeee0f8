#!/usr/bin/env bash
# What the test suite needs beyond Rust and the three services:
# - .venv/ with the official Standard Webhooks library, so a test verifies real deliveries with
#   someone else's code than ours;
# - Debian's prometheus package, for `promtool check metrics` and a real Prometheus server;
# - .node/ with the official `standardwebhooks` npm package, for the documented Node receiver.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "test-deps: installing prometheus (for promtool and a test server)"
  apt_install prometheus
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import standardwebhooks" 2>/dev/null; then
  python3 -m venv .venv >/dev/null 2>&1 || { apt_install python3-venv; python3 -m venv .venv; }
  .venv/bin/pip install --quiet --disable-pip-version-check "standardwebhooks==1.1.0"
fi

if [ ! -d .node/node_modules/standardwebhooks ]; then
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  npm install --silent --no-audit --no-fund --prefix .node "standardwebhooks@1.0.0" >/dev/null
fi

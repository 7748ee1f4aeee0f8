#!/usr/bin/env bash
# Makes .venv/ with the official Standard Webhooks library, which the test suite uses to verify
# real deliveries with someone else's code than ours.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import standardwebhooks" 2>/dev/null; then
  if ! python3 -m venv .venv >/dev/null 2>&1; then
    # Debian and Ubuntu ship venv separately.
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq python3-venv >/dev/null; else sudo apt-get install -y -qq python3-venv >/dev/null; fi
    python3 -m venv .venv
  fi
  .venv/bin/pip install --quiet --disable-pip-version-check "standardwebhooks==1.1.0"
fi

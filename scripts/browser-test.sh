#!/usr/bin/env bash
# Runs the dashboard's browser tests: Debian's Chromium driven by Playwright (playwright-core
# from npm) against a real `linkkit all` built by cargo. Installs what is missing: chromium
# (apt), node and npm (apt), the pinned npm packages (npm ci in tests/browser).
#
#   scripts/browser-test.sh                       run the tests (screenshots to a temporary folder)
#   scripts/browser-test.sh --update-screenshots  also refresh docs/screenshots/
#
# Needs PostgreSQL, RabbitMQ and Redis (scripts/services.sh starts them). Honours
# CARGO_TARGET_DIR; LINKKIT_BIN points at another linkkit binary; LINKKIT_BROWSER_LOG=1 shows
# Linkkit's log.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [[ "${1:-}" == "--update-screenshots" ]]; then
  export LINKKIT_SCREENSHOTS="$root/docs/screenshots"
  shift
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=no
apt_install() {
  echo "browser-test: installing $*"
  if [ "$apt_updated" = no ]; then as_root apt-get update -qq; apt_updated=yes; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

[[ -x /usr/bin/chromium ]] || apt_install chromium
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
command -v psql >/dev/null || apt_install postgresql-client

./scripts/services.sh

(cd tests/browser && npm ci --no-audit --no-fund --silent)

if [[ -z "${LINKKIT_BIN:-}" ]]; then
  cargo build --bin linkkit --locked
fi

cd tests/browser
exec node --test --test-concurrency=1 dashboard.test.mjs "$@"

#!/usr/bin/env bash
# Runs Linkkit locally: starts (or installs) the services, then `linkkit all`.
#
# Webhooks may go to private addresses here (LINKKIT_ALLOW_PRIVATE_TARGETS=true), because your
# receiver runs on localhost; Linkkit says so in its log. Never set that in production.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh
if ! command -v cargo >/dev/null 2>&1; then
  echo "Rust is not installed: see https://rustup.rs (one command), then run this again." >&2
  exit 1
fi
export LINKKIT_ALLOW_PRIVATE_TARGETS="${LINKKIT_ALLOW_PRIVATE_TARGETS:-true}"
exec cargo run --locked --bin linkkit -- all

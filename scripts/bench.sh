#!/usr/bin/env bash
# Runs the benchmarks (BENCHMARKS.md) on this machine: installs wrk and nginx-light if missing,
# builds in release mode, and runs linkkit-bench with the arguments given (default: everything,
# three runs each). Figures are printed as Markdown table rows.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v wrk >/dev/null 2>&1 || ! command -v nginx >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null
fi
cargo build --release --locked --bin linkkit --bin linkkit-bench
exec ./target/release/linkkit-bench "$@"

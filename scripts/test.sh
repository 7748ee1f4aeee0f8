#!/usr/bin/env bash
# Runs the whole test suite against real RabbitMQ, Redis and PostgreSQL (started if needed).
# Each end-to-end test makes its own database, namespace and ports, and removes them after.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh
./scripts/test-deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --lib --bins --tests "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
exit "$status"

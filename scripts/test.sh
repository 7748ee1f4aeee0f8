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
# The binaries first: several tests run `linkkit` as real processes.
cargo build --workspace --locked --bins
cargo test --workspace --locked --no-fail-fast --lib --bins --tests "$@" 2>&1 | tee "$log" || status=$?
# The receiver crate's documentation examples are tests too.
cargo test --locked -p linkkit-webhooks --doc 2>&1 | tee -a "$log" || status=$?
# The API against its own OpenAPI document, with every schemathesis check.
./scripts/schemathesis.sh 2>&1 | tee -a "$log" || status=$?
# The dashboard in a real browser (Chromium driven by Playwright, node's test runner).
./scripts/browser-test.sh 2>&1 | tee -a "$log" || status=$?
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     /^# (pass|fail|skipped) / { if ($2 == "pass") passed += $3; else if ($2 == "fail") failed += $3; else ignored += $3 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
exit "$status"

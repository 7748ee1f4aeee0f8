#!/usr/bin/env bash
# Property-based tests of the HTTP API against its own OpenAPI document: schemathesis (PyPI)
# reads /api/v1/openapi.json from a real `linkkit all` and sends generated requests — valid and
# invalid — to every operation, with every check on: no 5xx, every status, content type, header
# and body as documented, valid input accepted, invalid input refused, auth enforced, deleted
# objects gone, unsupported methods refused.
#
# The run gets its own database, RabbitMQ vhost (or namespace), Redis prefix and free ports, and
# removes them afterwards. Extra arguments go to `st run` (e.g. `--max-examples 100`,
# `--seed 42`). SCHEMATHESIS_MAX_EXAMPLES (default 25) bounds the examples per operation.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-25}
target_dir=${CARGO_TARGET_DIR:-target}

./scripts/services.sh
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv >/dev/null 2>&1 || {
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; apt-get install -y -qq python3-venv >/dev/null
    else sudo apt-get update -qq; sudo apt-get install -y -qq python3-venv >/dev/null; fi
    python3 -m venv .venv
  }
fi
if [ "$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$SCHEMATHESIS_VERSION" ]; then
  echo "schemathesis: installing schemathesis==$SCHEMATHESIS_VERSION into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
cargo build --locked --quiet --bin linkkit
linkkit="$target_dir/debug/linkkit"

free_port() { .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
run_id="st$(date +%s)$$"
api_port=$(free_port)
export LINKKIT_DATABASE_URL="postgres://postgres@127.0.0.1:5432/linkkit_$run_id"
export LINKKIT_NAMESPACE="$run_id"
export LINKKIT_API_ADDR="127.0.0.1:$api_port"
export LINKKIT_REDIRECT_ADDR="127.0.0.1:$(free_port)"
export LINKKIT_ADMIN_ADDR="127.0.0.1:$(free_port)"
export LINKKIT_API_RATE_LIMIT=0          # schemathesis is faster than any real client
export LINKKIT_RETRY_SCHEDULE=1s         # deliveries to generated endpoints end quickly
# Endpoint URLs on private addresses are refused by policy, which no schema can express (which
# IPv4 addresses are public?). Allowing them, as `scripts/dev.sh` does, leaves the document's
# syntax as the whole rule; the policy is tested in tests/e2e/api.rs and security.rs.
export LINKKIT_ALLOW_PRIVATE_TARGETS=true
# Generated endpoints have any name or address (https://a.example/…, http://10.1.2.3/…). No
# webhook may leave this process: the sender's client goes through a proxy on a port nothing
# listens on, so every attempt is refused locally and no name is ever looked up.
nowhere="http://127.0.0.1:$(free_port)"
export RUST_LOG=${RUST_LOG:-warn}

vhost=""
if command -v rabbitmqctl >/dev/null 2>&1 && rabbitmqctl add_vhost "$run_id" >/dev/null 2>&1; then
  vhost=$run_id
  rabbitmqctl set_permissions -p "$vhost" guest ".*" ".*" ".*" >/dev/null
  export LINKKIT_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$vhost"
fi

log=$(mktemp)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -n "$vhost" ]; then rabbitmqctl delete_vhost "$vhost" >/dev/null 2>&1 || true; fi
  if command -v psql >/dev/null 2>&1; then
    psql -q -h 127.0.0.1 -U postgres -d postgres \
      -c "DROP DATABASE IF EXISTS \"linkkit_$run_id\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli --scan --pattern "$run_id:*" | xargs -r redis-cli del >/dev/null 2>&1 || true
  fi
  rm -f "$log"
}
trap cleanup EXIT

key=$("$linkkit" workspace create schemathesis | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')
env HTTP_PROXY="$nowhere" HTTPS_PROXY="$nowhere" http_proxy="$nowhere" https_proxy="$nowhere" \
  NO_PROXY="" no_proxy="" "$linkkit" all >"$log" 2>&1 &
server=$!
base="http://127.0.0.1:$api_port"
for _ in $(seq 1 100); do
  curl -fsS "$base/api/v1/openapi.json" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "schemathesis: linkkit all did not start" >&2; exit 1; }
  sleep 0.2
done

# The event stream never ends by design; its behaviour is tested in tests/e2e/integrators.rs.
status=0
SCHEMATHESIS_HOOKS=scripts.schemathesis_hooks PYTHONPATH=. .venv/bin/st run "$base/api/v1/openapi.json" \
  --checks all \
  --header "Authorization: Bearer $key" \
  --max-examples "$MAX_EXAMPLES" \
  --exclude-path /api/v1/events/stream \
  --request-timeout 10 \
  --no-color \
  "$@" || status=$?
if grep -q "panicked" "$log"; then
  echo "schemathesis: the server panicked:" >&2
  grep -A5 "panicked" "$log" >&2
  status=1
fi
exit "$status"

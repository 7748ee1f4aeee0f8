#!/usr/bin/env bash
# Measures PostgreSQL alone on the statements the workers write per delivery (BENCHMARKS.md,
# section of 2026-12-02): a scratch database with every migration, one workspace, one
# endpoint and one link, then pgbench running crates/linkkit-bench/pgbench/delivery_statements.sql
# (32 deliveries a transaction). Prints pgbench's transactions/s.
# Usage: scripts/pgbench-deliveries.sh [seconds] [clients]   (default 15 s, 4 clients)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
clients=${2:-4}
db=linkkit_pgbench
psql_() { PGOPTIONS="-c client_min_messages=warning" psql -U postgres -h 127.0.0.1 -v ON_ERROR_STOP=1 -q "$@"; }
psql_ -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
trap 'psql_ -c "DROP DATABASE IF EXISTS $db"' EXIT
for migration in crates/linkkit-store/migrations/*.sql; do
  psql_ -d "$db" -f "$migration"
done
psql_ -d "$db" -c "INSERT INTO workspaces (id, name) VALUES ('ws_1', 'bench');
  INSERT INTO endpoints (id, workspace_id, url, events, secret, created_at, updated_at)
  VALUES ('ep_1', 'ws_1', 'http://127.0.0.1/', ARRAY['link.clicked'], 'whsec_x', now(), now());
  INSERT INTO links (id, workspace_id, slug, destination_url, created_at, updated_at)
  VALUES ('lnk_1', 'ws_1', 'bench', 'https://example.com/', now(), now())"
pgbench -U postgres -h 127.0.0.1 -n -f crates/linkkit-bench/pgbench/delivery_statements.sql \
  -c "$clients" -j 2 -T "$seconds" "$db" | grep -E "^(tps|latency average)"

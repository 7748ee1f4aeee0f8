#!/usr/bin/env bash
# Validates the deployment files offline: no Docker engine, cluster or network service needed.
#
#   docker-compose.yml        docker-compose config, alone and with docker-compose.cluster.yml
#                             (whose nodes must be the ones deploy/rabbitmq/cluster.conf lists)
#   deploy/prometheus/        promtool check config, check rules, test rules
#   deploy/grafana/           dashboard JSON, datasource uids, PromQL syntax of every query
#   deploy/k8s/               Kubernetes and KEDA schemas (a structural check for the
#                             RabbitmqCluster) plus cross-references
#                             (deploy/validate/validate-k8s.mjs)
#
# Installs what is missing first: docker-compose and prometheus (for promtool) from the
# distribution's packages (Debian/Ubuntu, needs root or sudo), Node.js if absent, and the
# validator's npm packages, pinned by deploy/validate/package-lock.json, with `npm ci` into
# deploy/validate/node_modules. When everything is there it installs nothing and takes
# a few seconds. Prints one PASS or FAIL line per check; exits 1 if any check failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=no
apt_install() {
  echo "check-deploy: installing $* (apt)"
  if [ "$apt_updated" = no ]; then as_root apt-get update -qq || return 1; apt_updated=yes; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ---- tools ---------------------------------------------------------------------------
setup_failed=0
need() { # need COMMAND PACKAGE...: install the packages unless COMMAND is on PATH
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if ! apt_install "$@" || ! command -v "$cmd" >/dev/null 2>&1; then
    echo "FAIL setup: could not install $cmd (packages: $*)"
    setup_failed=1
  fi
}
need docker-compose docker-compose
need promtool prometheus
need python3 python3
need node nodejs
need npm npm

# The validator's packages: `npm ci` only when package-lock.json changed since the last
# install (its hash is kept beside the modules), so repeated runs are fast.
validate_dir=deploy/validate
stamp=$validate_dir/node_modules/.linkkit-lock.sha256
lock_hash=$(sha256sum "$validate_dir/package-lock.json" | cut -d' ' -f1)
if command -v npm >/dev/null 2>&1 && [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  echo "check-deploy: installing $validate_dir/node_modules (npm ci)"
  if (cd "$validate_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "$lock_hash" >"$stamp"
  else
    echo "FAIL setup: npm ci in $validate_dir"
    setup_failed=1
  fi
fi

# ---- checks --------------------------------------------------------------------------
passed=0 failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check NAME COMMAND...: run it, print PASS with its last line of output or FAIL with all of it.
check() {
  local name=$1; shift
  if "$@" >"$tmp/out" 2>&1; then
    passed=$((passed + 1))
    local last
    last=$(grep -v '^[[:space:]]*$' "$tmp/out" | tail -n 1 | sed 's/^[[:space:]]*//')
    echo "PASS $name${last:+ — $last}"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     | /' "$tmp/out"
  fi
}

compose_config() { docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml is valid"; }
# The override with the 3-node RabbitMQ cluster; the nodes that cluster.conf lists for peer
# discovery must be services with those hostnames, and an odd number for quorum queues.
compose_cluster_config() {
  docker-compose -f docker-compose.yml -f docker-compose.cluster.yml config >"$tmp/cluster.yml" || return 1
  local nodes n
  nodes=$(sed -n 's/^cluster_formation\.classic_config\.nodes\.[0-9]* *= *rabbit@\([^ ]*\) *$/\1/p' deploy/rabbitmq/cluster.conf)
  for n in $nodes; do
    grep -qx "    hostname: $n" "$tmp/cluster.yml" || { echo "cluster.conf lists rabbit@$n, but no service has hostname $n"; return 1; }
  done
  n=$(echo "$nodes" | grep -c .)
  if [ "$n" -lt 3 ] || [ $((n % 2)) -eq 0 ]; then echo "cluster.conf lists $n nodes, expected an odd number, at least 3"; return 1; fi
  echo "docker-compose.yml with docker-compose.cluster.yml is valid, $n nodes as in cluster.conf"
}
prometheus_config() {
  promtool check config deploy/prometheus/prometheus.yml && echo "prometheus.yml and the rule files it loads are valid"
}
dashboard_queries() { promtool check rules "$tmp/dashboard-queries.json"; }

check "docker-compose config" compose_config
check "docker-compose config (RabbitMQ cluster)" compose_cluster_config
check "promtool check config" prometheus_config
check "promtool check rules" promtool check rules deploy/prometheus/alerts.yml
check "promtool test rules" promtool test rules deploy/prometheus/alerts_test.yml
check "grafana dashboards" python3 "$validate_dir/check-grafana.py" --rules-out "$tmp/dashboard-queries.json"
if [ -s "$tmp/dashboard-queries.json" ]; then
  check "grafana queries (PromQL syntax)" dashboard_queries
fi
check "kubernetes manifests" node "$validate_dir/validate-k8s.mjs" deploy/k8s

total=$((passed + failed))
if [ "$failed" -gt 0 ] || [ "$setup_failed" -ne 0 ]; then
  note=""
  [ "$setup_failed" -ne 0 ] && note=", and setup failed"
  echo "check-deploy: FAILED ($failed of $total checks failed$note)"
  exit 1
fi
echo "check-deploy: OK (all $total checks passed)"

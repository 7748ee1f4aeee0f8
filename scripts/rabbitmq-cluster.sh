#!/usr/bin/env bash
# A 3-node RabbitMQ cluster on this machine, beside the default node, from Debian's package:
# nodes rk1@localhost, rk2@localhost, rk3@localhost on AMQP ports 5681-5683, data under
# $LINKKIT_CLUSTER_DIR (default /tmp/linkkit-rmq). Used by the cluster tests and benchmarks.
#
#   scripts/rabbitmq-cluster.sh start     # start the nodes and join rk2, rk3 to rk1 (idempotent)
#   scripts/rabbitmq-cluster.sh stop      # stop every node and remove its data
#   scripts/rabbitmq-cluster.sh status
#   scripts/rabbitmq-cluster.sh urls      # the LINKKIT_AMQP_URL value for the cluster
set -euo pipefail
base=${LINKKIT_CLUSTER_DIR:-/tmp/linkkit-rmq}
nodes=(1 2 3)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
ctl() { as_root rabbitmqctl -q -n "rk$1@localhost" "${@:2}"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_node() {
  local i=$1 dir=$base/n$1
  if port_open $((5680 + i)); then return 0; fi
  as_root mkdir -p "$dir"
  # A config of its own: the machine's /etc/rabbitmq/rabbitmq.conf may pin the default port.
  printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users.guest = true\n' $((5680 + i)) | as_root tee "$dir/rabbitmq.conf" >/dev/null
  as_root chown -R rabbitmq:rabbitmq "$base" 2>/dev/null || true
  as_root env RABBITMQ_NODENAME="rk$i@localhost" RABBITMQ_NODE_PORT=$((5680 + i)) \
    RABBITMQ_DIST_PORT=$((25680 + i)) RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_PID_FILE="$dir/pid" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/plugins" \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    rabbitmq-server -detached
}

# A node is up when its AMQP port answers (the app starts its listener last).
wait_for_node() {
  for _ in $(seq 1 120); do port_open $((5680 + $1)) && return 0; sleep 1; done
  echo "cluster: rk$1 did not start; see $base/n$1/log" >&2
  return 1
}

case "${1:-}" in
  start)
    for i in "${nodes[@]}"; do start_node "$i"; done
    for i in "${nodes[@]}"; do wait_for_node "$i"; done
    for i in 2 3; do
      if ! ctl "$i" cluster_status 2>/dev/null | grep -q "rk1@localhost"; then
        ctl "$i" stop_app
        ctl "$i" join_cluster rk1@localhost
        ctl "$i" start_app
        wait_for_node "$i"
      fi
    done
    echo "cluster: rk1, rk2, rk3 up on AMQP ports 5681-5683"
    ;;
  stop)
    for i in "${nodes[@]}"; do ctl "$i" stop >/dev/null 2>&1 || true; done
    as_root rm -rf "$base"
    echo "cluster: stopped"
    ;;
  status)
    ctl 1 cluster_status
    ;;
  urls)
    echo "amqp://guest:guest@127.0.0.1:5681/%2f,amqp://guest:guest@127.0.0.1:5682/%2f,amqp://guest:guest@127.0.0.1:5683/%2f"
    ;;
  *)
    echo "usage: $0 start|stop|status|urls" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Makes sure RabbitMQ, Redis and PostgreSQL answer on their default local ports.
#
# Each one that is already up is left alone. One that is down is started; one that is missing
# is installed from the distribution's packages (Debian/Ubuntu, needs root or sudo) — or, where a
# Docker engine runs, started from docker-compose.yml instead.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for_port() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do port_open "$port" && return 0; sleep 1; done
  echo "services: $name did not come up on port $port" >&2
  return 1
}
docker_works() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
apt_updated=no
apt_install() {
  if [ "$apt_updated" = no ]; then as_root apt-get update -qq; apt_updated=yes; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  port_open 5432 && return 0
  if docker_works; then docker compose up -d postgres; wait_for_port PostgreSQL 5432; return; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "services: installing PostgreSQL"
    apt_install postgresql
    # Local development only: trust connections from 127.0.0.1, as Linkkit's default URL expects.
    local hba
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  echo "services: starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_for_port PostgreSQL 5432
}

ensure_redis() {
  port_open 6379 && return 0
  if docker_works; then docker compose up -d redis; wait_for_port Redis 6379; return; fi
  command -v redis-server >/dev/null 2>&1 || { echo "services: installing Redis"; apt_install redis-server; }
  echo "services: starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/linkkit.log
  wait_for_port Redis 6379
}

ensure_rabbitmq() {
  port_open 5672 && return 0
  if docker_works; then docker compose up -d rabbitmq; wait_for_port RabbitMQ 5672; return; fi
  command -v rabbitmq-server >/dev/null 2>&1 || { echo "services: installing RabbitMQ"; apt_install rabbitmq-server; }
  echo "services: starting RabbitMQ"
  as_root rabbitmq-server -detached
  wait_for_port RabbitMQ 5672
}

ensure_postgres
ensure_redis
ensure_rabbitmq
echo "services: PostgreSQL, Redis and RabbitMQ are up"

#!/usr/bin/env bash
# Installs, starts and stops the real services consentd's tests run against:
# Redis (Debian's redis-server) and Apache Kafka in KRaft mode (jars fetched
# from Maven Central, run with the machine's Java). Both bind to 127.0.0.1.
#
#   scripts/services.sh install   install what is missing (apt packages, Kafka jars)
#   scripts/services.sh up        install, then start Redis and Kafka and wait until ready
#   scripts/services.sh down      stop both and delete their data
#   scripts/services.sh status    print whether each one answers
#
# Environment (defaults in brackets):
#   CONSENTD_KAFKA_PORT [9092]  CONSENTD_REDIS_PORT [6379]
#   CONSENTD_CACHE      [$XDG_CACHE_HOME/consentd or ~/.cache/consentd]  jars live here
#   CONSENTD_STATE      [/tmp/consentd-services]  data dirs, logs and pid files
set -euo pipefail

KAFKA_VERSION=4.1.1
KAFKA_PORT=${CONSENTD_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
REDIS_PORT=${CONSENTD_REDIS_PORT:-6379}
CACHE=${CONSENTD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/consentd}
STATE=${CONSENTD_STATE:-/tmp/consentd-services}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KAFKA_LIBS=$CACHE/kafka-$KAFKA_VERSION/libs

log() { printf 'services: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

install() {
  local pkgs=()
  command -v redis-server >/dev/null || pkgs+=(redis-server)
  command -v redis-cli >/dev/null || pkgs+=(redis-tools)
  command -v kcat >/dev/null || pkgs+=(kcat)
  command -v java >/dev/null || pkgs+=(default-jre-headless)
  command -v mvn >/dev/null || [ -f "$KAFKA_LIBS/.complete" ] || pkgs+=(maven)
  if [ ${#pkgs[@]} -gt 0 ]; then apt_install "${pkgs[@]}"; fi

  if [ ! -f "$KAFKA_LIBS/.complete" ]; then
    log "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $KAFKA_LIBS"
    rm -rf "$KAFKA_LIBS" && mkdir -p "$KAFKA_LIBS"
    mvn -q -B -f "$HERE/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime
    ls "$KAFKA_LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null
    touch "$KAFKA_LIBS/.complete"
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name seconds command...
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "$name did not become ready in ${secs}s"; return 1; fi
    sleep 0.3
  done
}

redis_up() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then log "redis already answering on 127.0.0.1:$REDIS_PORT"; return; fi
  mkdir -p "$STATE/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
    --dir "$STATE/redis" --pidfile "$STATE/redis/redis.pid" --logfile "$STATE/redis/redis.log" \
    --save "" --appendonly no
  wait_for redis 20 redis-cli -p "$REDIS_PORT" ping
  log "redis up on 127.0.0.1:$REDIS_PORT"
}

kafka_up() {
  if port_open "$KAFKA_PORT"; then log "something already listens on 127.0.0.1:$KAFKA_PORT; assuming Kafka"; return; fi
  local dir=$STATE/kafka
  rm -rf "$dir" && mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
  local cp="$KAFKA_LIBS/*"
  local id
  id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
  java -cp "$cp" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
    || { cat "$dir/format.log" >&2; return 1; }
  nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true -cp "$cp" \
    kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 &
  echo $! >"$dir/kafka.pid"
  if ! wait_for kafka 90 kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 2; then
    tail -n 40 "$dir/kafka.log" >&2; return 1
  fi
  log "kafka $KAFKA_VERSION up on 127.0.0.1:$KAFKA_PORT (pid $(cat "$dir/kafka.pid"))"
}

down() {
  if [ -f "$STATE/kafka/kafka.pid" ]; then
    local pid; pid=$(cat "$STATE/kafka/kafka.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    log "kafka stopped"
  fi
  if [ -f "$STATE/redis/redis.pid" ]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$STATE/redis/redis.pid")" 2>/dev/null || true
    log "redis stopped"
  fi
  rm -rf "$STATE"
}

status() {
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then echo "redis: up (127.0.0.1:$REDIS_PORT)"; else echo "redis: down"; fi
  if kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 2 >/dev/null 2>&1; then echo "kafka: up (127.0.0.1:$KAFKA_PORT)"; else echo "kafka: down"; fi
}

case "${1:-}" in
  install) install ;;
  up) install; redis_up; kafka_up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 install|up|down|status" >&2; exit 2 ;;
esac

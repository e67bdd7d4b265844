#!/usr/bin/env bash
# Installs, starts and stops the real services consentd's tests run against,
# all bound to 127.0.0.1:
#   - Apache Kafka in KRaft mode (jars fetched from Maven Central, run with the
#     machine's Java): one broker with a PLAINTEXT listener and a SASL_SSL
#     listener (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; SCRAM users created
#     when the storage is formatted);
#   - Redis (Debian's redis-server): one node with a plaintext and a TLS port
#     and an ACL user, a 3-master Redis Cluster, and a Sentinel watching a
#     master with one replica.
# Certificates (a throw-away CA, a server and a client certificate) are made
# with openssl; the broker's trust store with keytool.
#
#   scripts/services.sh install   install what is missing (apt packages, Kafka jars)
#   scripts/services.sh up        install, then start everything and wait until ready
#   scripts/services.sh down      stop everything and delete its data
#   scripts/services.sh status    print whether each one answers
#   scripts/services.sh env       print the test environment (see below)
#
# Environment (defaults in brackets):
#   CONSENTD_KAFKA_PORT [9092]  plaintext listener; +1 controller, +2 SASL_SSL
#   CONSENTD_REDIS_PORT [6379]  plaintext Redis; +1 its TLS port, +2..+4 the
#                               cluster, +5 sentinel master, +6 its replica,
#                               +7 the sentinel
#   CONSENTD_CACHE      [$XDG_CACHE_HOME/consentd or ~/.cache/consentd]  jars live here
#   CONSENTD_STATE      [/tmp/consentd-services]  data dirs, logs, pid files, certificates
#
# `up` writes $CONSENTD_STATE/services.env (mode 0600): shell assignments of
# the CONSENTD_TEST_* variables the integration tests read (addresses,
# certificate paths, users and their generated passwords). `make test`
# sources it.
set -euo pipefail

KAFKA_VERSION=4.1.1
KAFKA_PORT=${CONSENTD_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=$((KAFKA_PORT + 1))
KAFKA_SASL_PORT=$((KAFKA_PORT + 2))
REDIS_PORT=${CONSENTD_REDIS_PORT:-6379}
REDIS_TLS_PORT=$((REDIS_PORT + 1))
REDIS_CLUSTER_PORTS=($((REDIS_PORT + 2)) $((REDIS_PORT + 3)) $((REDIS_PORT + 4)))
REDIS_SENTINEL_MASTER_PORT=$((REDIS_PORT + 5))
REDIS_SENTINEL_REPLICA_PORT=$((REDIS_PORT + 6))
REDIS_SENTINEL_PORT=$((REDIS_PORT + 7))
SENTINEL_MASTER_NAME=consentd
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
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install() {
  local pkgs=()
  command -v redis-server >/dev/null || pkgs+=(redis-server)
  command -v redis-cli >/dev/null || pkgs+=(redis-tools)
  command -v kcat >/dev/null || pkgs+=(kcat)
  command -v java >/dev/null && command -v keytool >/dev/null || pkgs+=(default-jre-headless)
  command -v openssl >/dev/null || pkgs+=(openssl)
  command -v promtool >/dev/null || pkgs+=(prometheus)  # promtool, for the alert rule tests
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || pkgs+=(docker-compose)  # `config` checks docker-compose.yml
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

# tls_certs makes a CA, a server certificate for 127.0.0.1/localhost and a
# client certificate (EC P-256, valid 30 days), the broker's PKCS12 key store
# and its trust store. Kept across `up` runs while the CA is valid for a day.
TLS=$STATE/tls
tls_certs() {
  if [ -f "$TLS/.complete" ] && openssl x509 -checkend 86400 -noout -in "$TLS/ca.pem" >/dev/null 2>&1; then return; fi
  rm -rf "$TLS" && mkdir -p "$TLS" && chmod 700 "$TLS"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  (
    cd "$TLS"
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 30 -subj "/CN=consentd test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile server.ext -out server.pem 2>/dev/null
    openssl req "${ec[@]}" -keyout client.key -out client.csr -subj "/CN=consentd" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile client.ext -out client.pem 2>/dev/null
    openssl rand -hex 16 >store.pass
    openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name broker \
      -out broker.p12 -passout "file:store.pass"
    keytool -importcert -noprompt -alias consentd-test-ca -file ca.pem -keystore truststore.p12 \
      -storetype PKCS12 -storepass "$(cat store.pass)" >/dev/null 2>&1
    rm -f ./*.csr ./*.ext ./*.srl
    chmod 600 ./*.key store.pass broker.p12
  )
  touch "$TLS/.complete"
}

# secret NAME prints the password stored under $STATE/secrets/NAME, making a
# random one the first time.
secret() {
  mkdir -p "$STATE/secrets" && chmod 700 "$STATE/secrets"
  local f=$STATE/secrets/$1
  [ -s "$f" ] || (umask 077 && openssl rand -hex 16 >"$f")
  cat "$f"
}

redis_ping() { redis-cli -p "$1" ping; }

# redis_start NAME PORT [redis-server options...] starts one daemonized
# redis-server with its data, log and pid file under $STATE/NAME.
redis_start() {
  local name=$1 port=$2; shift 2
  local dir=$STATE/$name
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --save "" --appendonly no "$@"
}

redis_up() {
  if redis_ping "$REDIS_PORT" >/dev/null 2>&1; then log "redis already answering on 127.0.0.1:$REDIS_PORT"; return; fi
  redis_start redis "$REDIS_PORT" \
    --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS/server.pem" --tls-key-file "$TLS/server.key" \
    --tls-ca-cert-file "$TLS/ca.pem" --tls-auth-clients optional
  wait_for redis 20 redis_ping "$REDIS_PORT"
  # an ACL user for the tests of username/password auth (the default user
  # stays password-less for the plaintext tests).
  redis-cli -p "$REDIS_PORT" ACL SETUSER consentd on ">$(secret redis-consentd)" '~*' '&*' +@all >/dev/null
  log "redis up on 127.0.0.1:$REDIS_PORT, TLS on 127.0.0.1:$REDIS_TLS_PORT"
}

redis_cluster_up() {
  local p0=${REDIS_CLUSTER_PORTS[0]}
  if redis-cli -p "$p0" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then log "redis cluster already answering on 127.0.0.1:$p0"; return; fi
  local addrs=() p
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    rm -rf "$STATE/redis-cluster-$p"
    redis_start "redis-cluster-$p" "$p" --cluster-enabled yes \
      --cluster-config-file "$STATE/redis-cluster-$p/nodes.conf" --cluster-node-timeout 5000
    addrs+=("127.0.0.1:$p")
  done
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do wait_for "redis cluster node $p" 20 redis_ping "$p"; done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$STATE/redis-cluster-$p0/create.log" 2>&1 \
    || { cat "$STATE/redis-cluster-$p0/create.log" >&2; return 1; }
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    wait_for "redis cluster state on $p" 30 bash -c "redis-cli -p $p cluster info | grep -q cluster_state:ok"
  done
  log "redis cluster up on ${addrs[*]}"
}

redis_sentinel_up() {
  if redis-cli -p "$REDIS_SENTINEL_PORT" sentinel get-master-addr-by-name "$SENTINEL_MASTER_NAME" 2>/dev/null | grep -q .; then
    log "redis sentinel already answering on 127.0.0.1:$REDIS_SENTINEL_PORT"; return
  fi
  rm -rf "$STATE/redis-sentinel-"*
  redis_start redis-sentinel-master "$REDIS_SENTINEL_MASTER_PORT"
  redis_start redis-sentinel-replica "$REDIS_SENTINEL_REPLICA_PORT" --replicaof 127.0.0.1 "$REDIS_SENTINEL_MASTER_PORT"
  wait_for "sentinel master" 20 redis_ping "$REDIS_SENTINEL_MASTER_PORT"
  local dir=$STATE/redis-sentinel
  mkdir -p "$dir"
  # Sentinel rewrites its configuration file, so it gets its own copy.
  cat >"$dir/sentinel.conf" <<CONF
bind 127.0.0.1
port $REDIS_SENTINEL_PORT
daemonize yes
dir $dir
pidfile $dir/redis.pid
logfile $dir/redis.log
sentinel monitor $SENTINEL_MASTER_NAME 127.0.0.1 $REDIS_SENTINEL_MASTER_PORT 1
sentinel down-after-milliseconds $SENTINEL_MASTER_NAME 5000
sentinel failover-timeout $SENTINEL_MASTER_NAME 10000
CONF
  redis-server "$dir/sentinel.conf" --sentinel
  wait_for "replica in sync" 30 bash -c "redis-cli -p $REDIS_SENTINEL_REPLICA_PORT info replication | grep -q master_link_status:up"
  wait_for "sentinel" 20 bash -c "redis-cli -p $REDIS_SENTINEL_PORT sentinel get-master-addr-by-name $SENTINEL_MASTER_NAME | grep -q $REDIS_SENTINEL_MASTER_PORT"
  log "redis sentinel up on 127.0.0.1:$REDIS_SENTINEL_PORT (master $SENTINEL_MASTER_NAME on $REDIS_SENTINEL_MASTER_PORT, replica on $REDIS_SENTINEL_REPLICA_PORT)"
}

kafka_up() {
  if port_open "$KAFKA_PORT"; then log "something already listens on 127.0.0.1:$KAFKA_PORT; assuming Kafka"; return; fi
  local dir=$STATE/kafka
  rm -rf "$dir" && mkdir -p "$dir/data" && chmod 700 "$dir"
  local store_pass plain_pw scram256_pw scram512_pw
  store_pass=$(cat "$TLS/store.pass")
  plain_pw=$(secret kafka-plain)
  scram256_pw=$(secret kafka-scram256)
  scram512_pw=$(secret kafka-scram512)
  local l=listener.name.sasl_ssl
  (umask 077 && cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
$l.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_consentd-plain="$plain_pw";
$l.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
$l.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
$l.ssl.keystore.type=PKCS12
$l.ssl.keystore.location=$TLS/broker.p12
$l.ssl.keystore.password=$store_pass
$l.ssl.truststore.type=PKCS12
$l.ssl.truststore.location=$TLS/truststore.p12
$l.ssl.truststore.password=$store_pass
$l.ssl.client.auth=requested
log.dirs=$dir/data
num.partitions=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
  )
  local cp="$KAFKA_LIBS/*"
  local id
  id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
  java -cp "$cp" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" \
    --add-scram "SCRAM-SHA-256=[name=consentd-scram256,password=\"$scram256_pw\"]" \
    --add-scram "SCRAM-SHA-512=[name=consentd-scram512,password=\"$scram512_pw\"]" >"$dir/format.log" 2>&1 \
    || { cat "$dir/format.log" >&2; return 1; }
  nohup java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true -cp "$cp" \
    kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 &
  echo $! >"$dir/kafka.pid"
  if ! wait_for kafka 90 kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 2; then
    tail -n 40 "$dir/kafka.log" >&2; return 1
  fi
  wait_for "kafka SASL_SSL" 30 port_open "$KAFKA_SASL_PORT"
  log "kafka $KAFKA_VERSION up on 127.0.0.1:$KAFKA_PORT, SASL_SSL on 127.0.0.1:$KAFKA_SASL_PORT (pid $(cat "$dir/kafka.pid"))"
}

# test_env prints the variables the integration tests read.
test_env() {
  cat <<ENV
CONSENTD_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
CONSENTD_TEST_KAFKA_SASL=127.0.0.1:$KAFKA_SASL_PORT
CONSENTD_TEST_KAFKA_PLAIN_USER=consentd-plain
CONSENTD_TEST_KAFKA_PLAIN_PASSWORD=$(secret kafka-plain)
CONSENTD_TEST_KAFKA_SCRAM256_USER=consentd-scram256
CONSENTD_TEST_KAFKA_SCRAM256_PASSWORD=$(secret kafka-scram256)
CONSENTD_TEST_KAFKA_SCRAM512_USER=consentd-scram512
CONSENTD_TEST_KAFKA_SCRAM512_PASSWORD=$(secret kafka-scram512)
CONSENTD_TEST_TLS_CA=$TLS/ca.pem
CONSENTD_TEST_TLS_CLIENT_CERT=$TLS/client.pem
CONSENTD_TEST_TLS_CLIENT_KEY=$TLS/client.key
CONSENTD_TEST_REDIS=127.0.0.1:$REDIS_PORT
CONSENTD_TEST_REDIS_TLS=127.0.0.1:$REDIS_TLS_PORT
CONSENTD_TEST_REDIS_USER=consentd
CONSENTD_TEST_REDIS_PASSWORD=$(secret redis-consentd)
CONSENTD_TEST_REDIS_CLUSTER=127.0.0.1:${REDIS_CLUSTER_PORTS[0]},127.0.0.1:${REDIS_CLUSTER_PORTS[1]},127.0.0.1:${REDIS_CLUSTER_PORTS[2]}
CONSENTD_TEST_REDIS_SENTINEL=127.0.0.1:$REDIS_SENTINEL_PORT
CONSENTD_TEST_REDIS_SENTINEL_MASTER=$SENTINEL_MASTER_NAME
ENV
}

write_env() {
  (umask 077 && test_env >"$STATE/services.env")
  log "test environment in $STATE/services.env"
}

# down signals every process started by `up` at once, waits up to 30s for
# all of them, kills what is left, and deletes the state.
down() {
  local f pid pids=() names=()
  for f in "$STATE/kafka/kafka.pid" "$STATE"/redis*/redis.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || continue
    pids+=("$pid"); names+=("$(basename "$(dirname "$f")")")
  done
  local deadline=$((SECONDS + 30)) alive
  while :; do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] || [ $SECONDS -ge $deadline ] && break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [ ${#names[@]} = 0 ] || log "stopped ${names[*]}"
  rm -rf "$STATE"
}

status() {
  local p
  if redis_ping "$REDIS_PORT" >/dev/null 2>&1; then echo "redis: up (127.0.0.1:$REDIS_PORT)"; else echo "redis: down"; fi
  if redis-cli --tls --cacert "$TLS/ca.pem" -p "$REDIS_TLS_PORT" ping >/dev/null 2>&1; then echo "redis tls: up (127.0.0.1:$REDIS_TLS_PORT)"; else echo "redis tls: down"; fi
  for p in "${REDIS_CLUSTER_PORTS[@]}"; do
    if redis-cli -p "$p" cluster info 2>/dev/null | grep -q cluster_state:ok; then echo "redis cluster node: up (127.0.0.1:$p)"; else echo "redis cluster node: down (127.0.0.1:$p)"; fi
  done
  if redis-cli -p "$REDIS_SENTINEL_PORT" ping >/dev/null 2>&1; then echo "redis sentinel: up (127.0.0.1:$REDIS_SENTINEL_PORT)"; else echo "redis sentinel: down"; fi
  if kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 2 >/dev/null 2>&1; then echo "kafka: up (127.0.0.1:$KAFKA_PORT)"; else echo "kafka: down"; fi
  if kcat -b "127.0.0.1:$KAFKA_SASL_PORT" -X security.protocol=SASL_SSL -X sasl.mechanism=PLAIN \
    -X sasl.username=consentd-plain -X "sasl.password=$(cat "$STATE/secrets/kafka-plain" 2>/dev/null)" \
    -X "ssl.ca.location=$TLS/ca.pem" -L -m 5 >/dev/null 2>&1; then
    echo "kafka sasl_ssl: up (127.0.0.1:$KAFKA_SASL_PORT)"
  else echo "kafka sasl_ssl: down"; fi
}

case "${1:-}" in
  install) install ;;
  up)
    install
    mkdir -p "$STATE"
    tls_certs
    # Kafka takes the longest: start it in the background while Redis comes up.
    kafka_up & kafka_pid=$!
    redis_up; redis_cluster_up; redis_sentinel_up
    wait "$kafka_pid"
    write_env
    ;;
  down) down ;;
  status) status ;;
  env) test_env ;;
  *) echo "usage: $0 install|up|down|status|env" >&2; exit 2 ;;
esac

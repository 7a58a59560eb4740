#!/usr/bin/env bash
# Installs (from Debian's packages) and starts, on loopback only, every server the tests use:
# PostgreSQL, MariaDB, Redis, RabbitMQ, FerretDB (MongoDB wire protocol) and Apache Kafka, each with the known credentials below, plus
# stress-ng for the sabotage benchmark and chromium (/usr/bin/chromium) for the console's
# browser tests (__test__/console-browser.spec.ts, driven by playwright-core). Idempotent: what is installed is not reinstalled,
# what is running is left alone, and nothing is ever stopped.
#
#   HAVOC_PG_URL     postgres://havoc:havoc@127.0.0.1:5432/havoc
#   HAVOC_MYSQL_URL  mysql://havoc:havoc@127.0.0.1:3306/havoc
#   HAVOC_REDIS_URL  redis://127.0.0.1:6379
#   HAVOC_AMQP_URL   amqp://havoc:havoc@127.0.0.1:5672
#   HAVOC_MONGO_URL  mongodb://127.0.0.1:27017/havoc   (FerretDB 1.24.2 on SQLite, built from the Go module proxy)
#   HAVOC_KAFKA_BROKERS  127.0.0.1:9092              (Apache Kafka 3.9.1, KRaft, one node, jars from Maven Central)
set -euo pipefail

log() { echo "[services] $*"; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
wait_for() { # wait_for <seconds> <description> <command...>
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  log "timed out waiting for $what"; return 1
}

install_packages() {
  local missing=()
  for pkg in postgresql mariadb-server redis-server rabbitmq-server stress-ng chromium openjdk-17-jre-headless maven; do
    have_pkg "$pkg" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "packages present"; return; fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Servers are started below, on loopback, by this script; keep dpkg from starting them.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

start_postgres() {
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then log "postgresql already running"; else
    local version; version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main >/dev/null
    sed -i "s/^#\?listen_addresses.*/listen_addresses = '127.0.0.1'/" "/etc/postgresql/$version/main/postgresql.conf"
    pg_ctlcluster "$version" main start
    wait_for 30 postgresql pg_isready -h 127.0.0.1 -p 5432
    log "postgresql $version started"
  fi
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='havoc'\"" | grep -q 1 ||
    su postgres -c "psql -qc \"CREATE ROLE havoc LOGIN PASSWORD 'havoc'\""
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='havoc'\"" | grep -q 1 ||
    su postgres -c "psql -qc 'CREATE DATABASE havoc OWNER havoc'"
}

start_mariadb() {
  if mysqladmin --protocol=tcp -h127.0.0.1 -uhavoc -phavoc ping >/dev/null 2>&1; then log "mariadb already running"; return; fi
  if ! mysqladmin ping >/dev/null 2>&1; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    (mysqld_safe --bind-address=127.0.0.1 >/dev/null 2>&1 &)
    wait_for 60 mariadb mysqladmin ping
    log "mariadb started"
  fi
  mysql -uroot <<'SQL'
CREATE DATABASE IF NOT EXISTS havoc;
CREATE USER IF NOT EXISTS 'havoc'@'127.0.0.1' IDENTIFIED BY 'havoc';
CREATE USER IF NOT EXISTS 'havoc'@'localhost' IDENTIFIED BY 'havoc';
GRANT ALL PRIVILEGES ON havoc.* TO 'havoc'@'127.0.0.1';
GRANT ALL PRIVILEGES ON havoc.* TO 'havoc'@'localhost';
FLUSH PRIVILEGES;
SQL
}

start_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then log "redis already running"; return; fi
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no >/dev/null
  wait_for 30 redis sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
  log "redis started"
}

start_rabbitmq() {
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1
  # Keep Erlang distribution on loopback too.
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
  if ! rabbitmqctl -q status >/dev/null 2>&1; then
    (rabbitmq-server -detached >/dev/null 2>&1 || true)
    wait_for 90 rabbitmq rabbitmqctl -q await_startup
    log "rabbitmq started"
  else
    log "rabbitmq already running"
  fi
  rabbitmqctl -q list_users | grep -q '^havoc' || rabbitmqctl -q add_user havoc havoc
  rabbitmqctl -q set_permissions -p / havoc '.*' '.*' '.*'
}

# FerretDB speaks the MongoDB wire protocol over SQLite. Built from the Go module proxy into a
# cache outside the repo: `go install` alone gives a binary that panics at start (the module lacks
# build/version/version.txt), so the source is copied out of the module cache and the file written.
FERRETDB_VERSION=v1.24.2
FERRETDB_HOME=${HAVOC_FERRETDB_HOME:-/var/cache/havoc/ferretdb}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mongo_ping() { # a `ping` through the repo's mongodb driver, the one the tests use
  (cd "$REPO" && node -e "const { MongoClient } = require('mongodb');
    const c = new MongoClient('mongodb://127.0.0.1:27017/havoc', { serverSelectionTimeoutMS: 1000 });
    c.db('havoc').command({ ping: 1 }).then(() => c.close()).then(() => process.exit(0), () => process.exit(1));")
}
build_ferretdb() {
  local bin=$FERRETDB_HOME/bin/ferretdb
  if [ -x "$bin" ]; then return; fi
  log "building FerretDB $FERRETDB_VERSION into $FERRETDB_HOME"
  go mod download "github.com/FerretDB/FerretDB@$FERRETDB_VERSION"
  local src=$FERRETDB_HOME/src
  rm -rf "$src" && mkdir -p "$FERRETDB_HOME/bin"
  cp -r "$(go env GOMODCACHE)/github.com/!ferret!d!b/!ferret!d!b@$FERRETDB_VERSION" "$src"
  chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" > "$src/build/version/version.txt"
  (cd "$src" && go build -o "$bin.tmp" ./cmd/ferretdb) && mv "$bin.tmp" "$bin"
}
start_ferretdb() {
  if mongo_ping >/dev/null 2>&1; then log "ferretdb already running"; return; fi
  build_ferretdb
  mkdir -p "$FERRETDB_HOME/data"
  # GOMEMLIMIT bounds the Go heap (the SQLite files are on disk).
  (cd "$FERRETDB_HOME" && GOMEMLIMIT=256MiB setsid "$FERRETDB_HOME/bin/ferretdb" --handler=sqlite \
    --sqlite-url="file:$FERRETDB_HOME/data/" --state-dir="$FERRETDB_HOME" --listen-addr=127.0.0.1:27017 \
    --debug-addr=127.0.0.1:8088 --telemetry=disable --log-level=warn \
    >>"$FERRETDB_HOME/ferretdb.log" 2>&1 < /dev/null &)
  wait_for 60 ferretdb mongo_ping
  log "ferretdb $FERRETDB_VERSION started (log: $FERRETDB_HOME/ferretdb.log)"
}

# Apache Kafka as one KRaft node (broker and controller in one JVM), its jars and their
# dependencies copied from Maven Central by the small pom in .ci/kafka, cached outside the repo.
KAFKA_HOME=${HAVOC_KAFKA_HOME:-/var/cache/havoc/kafka}
kafka_ready() { (cd "$REPO" && node .ci/kafka/ready.cjs 127.0.0.1:9092); }
fetch_kafka() {
  if [ -f "$KAFKA_HOME/lib/.complete" ] && cmp -s "$REPO/.ci/kafka/pom.xml" "$KAFKA_HOME/pom.xml"; then return; fi
  log "fetching Apache Kafka's jars from Maven Central into $KAFKA_HOME/lib"
  mkdir -p "$KAFKA_HOME"
  rm -rf "$KAFKA_HOME/lib"
  cp "$REPO/.ci/kafka/pom.xml" "$KAFKA_HOME/pom.xml"
  (cd "$KAFKA_HOME" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib)
  touch "$KAFKA_HOME/lib/.complete"
}
start_kafka() {
  if kafka_ready; then log "kafka already running"; return; fi
  fetch_kafka
  local data=$KAFKA_HOME/data config=$KAFKA_HOME/server.properties
  { cat "$REPO/.ci/kafka/server.properties"; echo "log.dirs=$data"; } > "$config"
  cp "$REPO/.ci/kafka/log4j.properties" "$KAFKA_HOME/log4j.properties"
  # A KRaft data dir is formatted once, with a cluster id; meta.properties marks it done.
  if [ ! -f "$data/meta.properties" ]; then
    local cluster_id; cluster_id=$(java -cp "$KAFKA_HOME/lib/*" kafka.tools.StorageTool random-uuid)
    java -cp "$KAFKA_HOME/lib/*" -Dlog4j.configuration="file:$KAFKA_HOME/log4j.properties" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$config" >/dev/null
  fi
  (cd "$KAFKA_HOME" && setsid java -Xmx512m -Xms256m -cp "$KAFKA_HOME/lib/*" \
    -Dlog4j.configuration="file:$KAFKA_HOME/log4j.properties" kafka.Kafka "$config" \
    >>"$KAFKA_HOME/kafka.log" 2>&1 < /dev/null &)
  wait_for 120 kafka kafka_ready
  log "kafka 3.9.1 started (log: $KAFKA_HOME/kafka.log)"
}

install_packages
start_postgres
start_mariadb
start_redis
start_rabbitmq
start_ferretdb
start_kafka
log "all services up on 127.0.0.1"

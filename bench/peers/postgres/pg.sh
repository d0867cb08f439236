#!/usr/bin/env bash
# pg.sh — a throw-away PostgreSQL 15 cluster for giftcard-pg-bench.
#
#   pg.sh start  DIR [PORT]   install postgresql-15 + libpq-dev if missing (root only),
#                             initdb a cluster in DIR/data, start it on 127.0.0.1:PORT
#                             (default 54329), create database "giftcard", print the
#                             libpq connection string on stdout
#   pg.sh status DIR          is it running? prints the connection string (exit 3 if not)
#   pg.sh stop   DIR          pg_ctl stop -m fast, then remove DIR
#
# The cluster is durable (fsync=on, synchronous_commit=on; a client may turn the latter
# off per session) and tuned the way a DBA would on a 24 GiB machine. It listens only on
# 127.0.0.1, has no Unix socket and trusts every local TCP connection: never point it at
# anything but a benchmark. Environment: PGBIN (default /usr/lib/postgresql/15/bin).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DEFAULT_PORT=54329
MARKER=.giftcard-pg-bench   # only a DIR holding this file is ever removed by `stop`
DBNAME=giftcard

die() { echo "pg.sh: $*" >&2; exit 1; }
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
cmd=$1
DIR=$2
PORT_ARG=${3:-}
[ -n "$DIR" ] || usage
DIR=$(realpath -m -- "$DIR")
[ "$DIR" != / ] || die "refusing to use / as the cluster directory"
DATA=$DIR/data
LOG=$DIR/server.log

is_root() { [ "$(id -u)" = 0 ]; }

# Run a PostgreSQL server binary as the cluster's owner: postgres refuses to run as root.
as_owner() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

conn_string() { echo "host=127.0.0.1 port=$1 user=postgres dbname=$DBNAME"; }

installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q 'install ok installed'; }

ensure_packages() {
  local missing=()
  if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
    installed postgresql-15 && die "postgresql-15 is installed but $PGBIN/initdb is not there (set PGBIN)"
    missing+=(postgresql-15)
  fi
  if [ ! -f /usr/include/postgresql/libpq-fe.h ] && ! installed libpq-dev; then
    missing+=(libpq-dev)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    die "missing ${missing[*]} and there is no apt-get: install PostgreSQL 15 and libpq by hand"
  fi
  is_root || die "missing ${missing[*]}: run as root, or: sudo apt-get install ${missing[*]}"
  echo "pg.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  [ -x "$PGBIN/initdb" ] || die "installed ${missing[*]} but $PGBIN/initdb is still missing"
}

port_busy() {
  # Succeeds if something accepts TCP connections on 127.0.0.1:$1.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Memory sizing for the machine we run on (the issue's machine has 24 GiB):
# shared_buffers = 25 % of RAM, at most 8 GiB; effective_cache_size = 50 %.
mem_mib() { awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo; }

write_config() {
  local port=$1 mem sb ecs
  mem=$(mem_mib)
  sb=$(( mem / 4 )); [ $sb -gt 8192 ] && sb=8192; [ $sb -lt 128 ] && sb=128
  ecs=$(( mem / 2 )); [ $ecs -lt 256 ] && ecs=256
  cat >>"$DATA/postgresql.conf" <<EOF

# ---- giftcard-pg-bench (bench/peers/postgres/pg.sh) ----
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''        # TCP on loopback only
max_connections = 400               # up to 256 benchmark clients + checks + psql

# memory: ${mem} MiB of RAM on this machine
shared_buffers = ${sb}MB
effective_cache_size = ${ecs}MB
work_mem = 16MB
maintenance_work_mem = 1GB
huge_pages = try

# durability: a commit is on disk before the client hears about it
fsync = on
synchronous_commit = on
full_page_writes = on
wal_level = replica

# checkpoints: spread out, not a storm every few seconds under write load
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 15min
checkpoint_completion_target = 0.9

# SSD planner costs
random_page_cost = 1.1
effective_io_concurrency = 200

autovacuum = on
log_line_prefix = '%m [%p] '
log_checkpoints = on
EOF
}

start() {
  local port=${PORT_ARG:-$DEFAULT_PORT}
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1024 ] && [ "$port" -le 65535 ] \
    || die "bad port '$port' (1024-65535)"
  ensure_packages

  if [ -e "$DIR" ] && [ ! -f "$DIR/$MARKER" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then
    die "$DIR exists, is not empty and is not a pg.sh cluster: choose another directory"
  fi

  if [ -f "$DIR/$MARKER" ] && [ -f "$DATA/PG_VERSION" ]; then
    port=$(cat "$DIR/port")
    if as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
      echo "pg.sh: already running in $DIR" >&2
      conn_string "$port"
      return 0
    fi
    echo "pg.sh: restarting the existing cluster in $DIR" >&2
  else
    port_busy "$port" && die "127.0.0.1:$port is already in use: pass another PORT"
    mkdir -p "$DIR"
    touch "$DIR/$MARKER"
    echo "$port" >"$DIR/port"
    if is_root; then
      id postgres >/dev/null 2>&1 || die "there is no 'postgres' user to run the server as"
      chown -R postgres: "$DIR"
      chmod 700 "$DIR"
      runuser -u postgres -- test -w "$DIR" \
        || die "user postgres cannot reach $DIR (a parent directory is closed to it): use e.g. /tmp/giftcard-pg"
    fi
    local locale=C.UTF-8
    locale -a 2>/dev/null | grep -qix 'c.utf-\?8' || locale=C
    echo "pg.sh: initdb $DATA" >&2
    as_owner "$PGBIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale="$locale" \
      --auth=trust >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; die "initdb failed (log above)"; }
    write_config "$port"
  fi

  echo "pg.sh: starting PostgreSQL on 127.0.0.1:$port (log: $LOG)" >&2
  as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null \
    || { tail -n 30 "$LOG" >&2 2>/dev/null; die "pg_ctl start failed (log above)"; }

  if ! "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'" | grep -q 1; then
    "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
      -c "CREATE DATABASE $DBNAME" || die "could not create database $DBNAME"
  fi
  conn_string "$port"
}

status() {
  [ -f "$DIR/$MARKER" ] && [ -f "$DATA/PG_VERSION" ] || { echo "pg.sh: no cluster in $DIR" >&2; exit 3; }
  if as_owner "$PGBIN/pg_ctl" -D "$DATA" status >&2; then
    conn_string "$(cat "$DIR/port")"
  else
    exit 3
  fi
}

stop() {
  if [ ! -e "$DIR" ]; then
    echo "pg.sh: nothing in $DIR" >&2
    return 0
  fi
  [ -f "$DIR/$MARKER" ] || die "$DIR was not made by pg.sh start: not touching it"
  if [ -f "$DATA/PG_VERSION" ] && as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    echo "pg.sh: stopping PostgreSQL in $DIR" >&2
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 120 stop >/dev/null \
      || die "pg_ctl stop failed; $DIR is left in place"
  fi
  rm -rf -- "$DIR"
  echo "pg.sh: removed $DIR" >&2
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac

#!/usr/bin/env bash
# scripts/pg-cluster.sh: a throwaway PostgreSQL cluster for the tests.
#
#   scripts/pg-cluster.sh run CMD [ARGS...]   make a cluster in a new temporary
#                                             directory, run CMD with its
#                                             environment, remove it (always),
#                                             exit with CMD's status
#   scripts/pg-cluster.sh create DIR          make and start a cluster in DIR
#                                             (DIR/env holds its environment)
#   scripts/pg-cluster.sh stop DIR            stop it (fast: sessions are cut)
#   scripts/pg-cluster.sh start DIR           start it again, same port
#   scripts/pg-cluster.sh destroy DIR         stop it and remove DIR
#
# The cluster listens on 127.0.0.1 at a free port (password login) and on a
# Unix socket in DIR (no password); it never touches a system cluster. As
# root (CI), the server runs as the `postgres` user, which owns DIR; other
# users run it as themselves. Durability is off (fsync): it is thrown away.
#
# The environment CMD gets (and DIR/env holds):
#   CRMD_TEST_PG_URL     postgresql://postgres:PASSWORD@127.0.0.1:PORT
#                        (append /DBNAME for a database)
#   CRMD_TEST_PG_SOCKET  host=DIR port=PORT user=postgres (libpq key=value)
#   CRMD_TEST_PG_DIR     DIR
#   CRMD_TEST_PG_CTL     this script, for stop/start DIR (the outage test)
#
# `run` makes its directory in /dev/shm when that is writable, else in
# $TMPDIR (or /tmp); CRMD_TEST_PG_TMPDIR overrides both.
#
# Without PostgreSQL's server binaries this fails: the tests that need it
# must not be skipped quietly.
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

die() { echo "pg-cluster: $*" >&2; exit 1; }

pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] ||
    die "PostgreSQL server binaries not found under /usr/lib/postgresql (install Debian's postgresql)"
  echo "$d"
}

# Runs a command as the cluster's owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

create() {
  local dir=$1 bin
  bin=$(pg_bin)
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "no postgres user (install Debian's postgresql)"
  fi
  mkdir -p "$dir"
  chmod 700 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  as_owner test -w "$dir" ||
    die "$dir is not reachable by the postgres user (set TMPDIR to a directory it can reach, e.g. /tmp)"
  local pw
  pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
  (umask 077 && echo "$pw" >"$dir/pwfile")
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/pwfile"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 --no-sync \
    --auth-local=trust --auth-host=scram-sha-256 --pwfile="$dir/pwfile" >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  rm -f "$dir/pwfile"
  local port tries=0
  while :; do
    port=$(free_port)
    as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF
# scripts/pg-cluster.sh: a throwaway test cluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 400
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_min_error_statement = panic
EOF
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null; then
      break
    fi
    tries=$((tries + 1))
    [ $tries -lt 3 ] || { tail -n 20 "$dir/server.log" >&2 || true; die "the cluster did not start"; }
  done
  cat >"$dir/env" <<EOF
CRMD_TEST_PG_URL='postgresql://postgres:$pw@127.0.0.1:$port'
CRMD_TEST_PG_SOCKET='host=$dir port=$port user=postgres'
CRMD_TEST_PG_DIR='$dir'
CRMD_TEST_PG_CTL='$SELF'
EOF
}

stop() {
  as_owner "$(pg_bin)/pg_ctl" -D "$1/data" -m fast -w -t 30 stop >/dev/null
}

start() {
  as_owner "$(pg_bin)/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 30 start >/dev/null
}

destroy() {
  local dir=$1
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

run() {
  [ $# -gt 0 ] || die "run needs a command"
  local dir
  # In memory (/dev/shm) when there is one: the suites make and drop hundreds
  # of databases, and nothing here needs to reach a disk.
  local base=${CRMD_TEST_PG_TMPDIR:-}
  if [ -z "$base" ]; then
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then base=/dev/shm; else base=${TMPDIR:-/tmp}; fi
  fi
  dir=$(mktemp -d "$base/crmd-pg.XXXXXX")
  trap 'destroy "$dir"' EXIT
  trap 'exit 130' INT TERM
  create "$dir"
  set -a
  # shellcheck disable=SC1091
  . "$dir/env"
  set +a
  echo "pg-cluster: PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}') on 127.0.0.1:${CRMD_TEST_PG_URL##*:} in $dir" >&2
  local rc=0
  "$@" || rc=$?
  exit $rc
}

cmd=${1:-}
shift || true
case "$cmd" in
  run) run "$@" ;;
  create | stop | start | destroy)
    [ $# -eq 1 ] || die "$cmd needs DIR"
    "$cmd" "$1"
    ;;
  *) sed -n '2,14p' "$SELF" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

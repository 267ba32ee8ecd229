#!/usr/bin/env bash
# Runs the durable queue tests against a local PostgreSQL instead of SQLite: installs PostgreSQL from the distribution's
# packages when it is missing, starts a throw-away server on a free port in a temporary folder, points the tests at it
# (ACTORQUEUE_TEST_POSTGRES) and stops it again. CI runs the same tests on SQLite; this script is run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${PGPORT_FOR_TESTS:-54329}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi

data="$(mktemp -d /tmp/actorqueue-pg.XXXXXX)"
chown postgres "$data"
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop() { as_postgres "$bin/pg_ctl" -D "$data/db" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$data"; }
trap stop EXIT

as_postgres "$bin/initdb" -D "$data/db" -U postgres --auth=trust >/dev/null
as_postgres "$bin/pg_ctl" -D "$data/db" -o "-p $port -k $data -c listen_addresses=127.0.0.1" -l "$data/server.log" -w start >/dev/null
as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres actorqueue_tests

export ACTORQUEUE_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=postgres;Database=actorqueue_tests"
dotnet build tests/ActorQueue.Tests -c Release -warnaserror
# The storage tests check SQLite files and the crash tests run SQLite in a child process: the rest run on PostgreSQL.
dotnet test tests/ActorQueue.Tests -c Release --no-build \
  --filter "FullyQualifiedName~Queues.Durable.DurableQueueTests|FullyQualifiedName~Queues.Durable.DurableRetryTests|FullyQualifiedName~Queues.Durable.DurableAdvisoryLockTests"

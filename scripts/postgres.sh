#!/usr/bin/env bash
# A local PostgreSQL server for the store tests (Debian's `postgresql`): installed when missing (as root),
# its first cluster started, and a superuser role for the current user (peer login over the Unix socket).
# Prints the server's SQLAlchemy URL. `bash scripts/postgres.sh stop` stops that cluster again.
set -euo pipefail
as_root() { [[ $(id -u) == 0 ]] || { echo "postgres.sh: $1 needs root (or set ADCREATIVE_TEST_POSTGRES=URL)" >&2; exit 1; }; }
if ! command -v pg_lsclusters >/dev/null; then
  as_root "installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq postgresql >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }
fi
cluster() { pg_lsclusters -h | head -1; }
if [[ -z "$(cluster)" ]]; then
  as_root "creating a cluster"
  pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -1)" main >&2
fi
read -r ver name port status _ <<<"$(cluster)"
if [[ ${1:-} == stop ]]; then
  [[ $status == online ]] && pg_ctlcluster "$ver" "$name" stop
  exit 0
fi
if [[ $status != online ]]; then
  # Its messages (e.g. "Removed stale pid file.") go to stderr: stdout is the URL alone, which callers capture.
  pg_ctlcluster "$ver" "$name" start >&2
fi
user=$(id -un)
if ! psql -h /var/run/postgresql -p "$port" -d postgres -tAc "SELECT 1" >/dev/null 2>&1; then
  as_root "creating the role $user"
  su postgres -c "createuser -h /var/run/postgresql -p $port -s $user" >&2
fi
echo "postgresql+psycopg:///postgres?host=/var/run/postgresql&port=$port"

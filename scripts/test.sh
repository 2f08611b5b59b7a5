#!/usr/bin/env bash
# The tests as CI runs them: the whole suite on SQLite, then every test that used a store's database again on
# a real PostgreSQL (a fresh database per test module, dropped afterwards; see tests/conftest.py).
#   bash scripts/test.sh                                 # both (PostgreSQL installed and started as root)
#   ADCREATIVE_TEST_POSTGRES=URL bash scripts/test.sh    # the second pass on that server (may create databases)
#   SKIP_POSTGRES=1 bash scripts/test.sh                 # SQLite only
#   TEST_WORKERS=1 bash scripts/test.sh                  # one process (default: one per core, at most 4)
# Extra arguments go to the SQLite pass (e.g. -x); the PostgreSQL pass takes the store tests it ran.
# Both passes run in TEST_WORKERS pytest-xdist processes, a test file per process at a time (module fixtures are
# built once); the tests hold torch to one thread each, so one process alone leaves the other cores idle.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
unset ADCREATIVE_DATABASE_URL  # tests make their own stores; never one from the environment
workers=${TEST_WORKERS:-$(nproc 2>/dev/null || echo 1)}
[[ $workers =~ ^[1-9][0-9]*$ ]] || { echo "test.sh: TEST_WORKERS must be a positive whole number, got '$workers'" >&2; exit 2; }
(( workers > 4 )) && workers=4
par=()
(( workers > 1 )) && par=(-n "$workers" --dist loadfile)
list=$(mktemp)
trap 'rm -f "$list"' EXIT
t0=$SECONDS
"$PY" -m pytest -q "${par[@]}" --list-store-tests="$list" "$@"
echo "SQLite: $((SECONDS - t0)) s; $(wc -l <"$list") tests used a store"
if [[ ${SKIP_POSTGRES:-0} == 1 || ! -s $list ]]; then
  echo "PostgreSQL pass skipped"
  exit 0
fi
started=0
if [[ -z ${ADCREATIVE_TEST_POSTGRES:-} ]]; then
  pg_lsclusters -h 2>/dev/null | grep -q online || started=1
  # The URL is the last line the script prints; anything a server tool says before it is not part of it.
  ADCREATIVE_TEST_POSTGRES=$(bash scripts/postgres.sh | tail -n 1)
  [[ $ADCREATIVE_TEST_POSTGRES == postgresql* ]] || { echo "test.sh: postgres.sh printed no server URL" >&2; exit 1; }
fi
t1=$SECONDS
rc=0
ADCREATIVE_TEST_POSTGRES=$ADCREATIVE_TEST_POSTGRES "$PY" -m pytest -q "${par[@]}" "@$list" || rc=$?
echo "PostgreSQL: $((SECONDS - t1)) s for the $(wc -l <"$list") store tests"
[[ $started == 1 ]] && bash scripts/postgres.sh stop
exit $rc

#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1, starting (or, as root, installing)
# them when needed. Used by `make test`.
set -euo pipefail

as_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  as_root || { echo "!! $* missing and not root: install it and retry" >&2; exit 1; }
  echo "==> installing $* (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  echo "==> starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  pg_isready -h 127.0.0.1 -p 5432 -q || { echo "!! PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
fi
# The suite and the benchmarks connect as a role of their own with a password, so they work
# whatever the server's authentication rules (trust, md5 or scram over TCP). It is created
# through the local socket as the postgres OS user (peer authentication on a stock install).
PGROLE=${MERIDIAN_DB_USER:-meridian}
PGPASS=${MERIDIAN_DB_PASSWORD:-meridian-local}
as_postgres() {
  if as_root && id postgres >/dev/null 2>&1; then runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -qtA "$@"
  else psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -qtA "$@"; fi
}
if ! PGPASSWORD=$PGPASS psql -X -h 127.0.0.1 -U "$PGROLE" -d postgres -qtAc "select 1" >/dev/null 2>&1; then
  echo "==> creating PostgreSQL role $PGROLE"
  as_postgres -d postgres -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PGROLE') THEN
        CREATE ROLE $PGROLE LOGIN CREATEDB PASSWORD '$PGPASS';
      ELSE
        ALTER ROLE $PGROLE LOGIN CREATEDB PASSWORD '$PGPASS';
      END IF; END \$\$;" \
    || { echo "!! could not create the PostgreSQL role $PGROLE (run as root, or create it: LOGIN CREATEDB PASSWORD)" >&2; exit 1; }
  PGPASSWORD=$PGPASS psql -X -h 127.0.0.1 -U "$PGROLE" -d postgres -qtAc "select 1" >/dev/null \
    || { echo "!! PostgreSQL refuses $PGROLE over TCP with its password: check pg_hba.conf" >&2; exit 1; }
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  command -v redis-server >/dev/null || apt_install redis-server
  echo "==> starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
  redis-cli -h 127.0.0.1 ping >/dev/null || { echo "!! Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }
fi
echo "==> PostgreSQL and Redis are up"

#!/usr/bin/env bash
# Install (Debian package `postgresql`) and start a local PostgreSQL for the audit-log tests,
# then print the SQLAlchemy URL they read from BASTION_TEST_POSTGRES_URL.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null)" ]; then
    export DEBIAN_FRONTEND=noninteractive
    (apt-get update -qq && apt-get install -y -qq postgresql >/dev/null) 1>&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
    pg_createcluster "$version" main 1>&2
fi
pg_ctlcluster "$version" main start 1>&2 || true
for _ in $(seq 1 50); do
    pg_isready -q && break
    sleep 0.2
done
su postgres -c "psql -qtc \"SELECT 1 FROM pg_roles WHERE rolname='bastion'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE ROLE bastion LOGIN PASSWORD 'bastion'\"" 1>&2
su postgres -c "psql -qtc \"SELECT 1 FROM pg_database WHERE datname='bastion_test'\"" | grep -q 1 \
    || su postgres -c "createdb -O bastion bastion_test" 1>&2
echo "postgresql+psycopg://bastion:bastion@127.0.0.1:5432/bastion_test"

#!/usr/bin/env bash
# Makes PostgreSQL reachable on 127.0.0.1:5432 with trust auth for user `postgres`, as the
# ctl PostgreSQL tests expect. Idempotent: does nothing when it already answers.
set -euo pipefail

if pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
    echo "PostgreSQL already accepting connections on 127.0.0.1:5432"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q postgresql postgresql-client
fi

VERSION="$(ls /etc/postgresql | sort -V | tail -n1)"
HBA="/etc/postgresql/${VERSION}/main/pg_hba.conf"
# Trust local and loopback connections (test machines only).
if ! grep -q "floodgate-tests" "$HBA"; then
    $SUDO sh -c "printf '%s\n' '# floodgate-tests: trust loopback' \
        'local all all trust' 'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust' \
        | cat - '$HBA' > '$HBA.new' && mv '$HBA.new' '$HBA'"
fi
$SUDO pg_ctlcluster --skip-systemctl-redirect "$VERSION" main start || \
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$VERSION" main reload

for _ in $(seq 1 30); do
    if pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
        echo "PostgreSQL ${VERSION} is up on 127.0.0.1:5432"
        exit 0
    fi
    sleep 1
done
echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 1

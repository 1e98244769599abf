#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 with trust auth for the `postgres`
# user, as the tests expect: installs it from Debian's packages if absent, starts it if down.
set -euo pipefail

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "installing PostgreSQL"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    # Trust loopback connections: a throw-away test server on a CI machine.
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start || true
fi

for _ in $(seq 1 30); do
    if pg_isready -q -h 127.0.0.1 -p 5432; then
        psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null
        echo "PostgreSQL is up on 127.0.0.1:5432"
        exit 0
    fi
    sleep 1
done
echo "error: PostgreSQL is not reachable on 127.0.0.1:5432" >&2
exit 1

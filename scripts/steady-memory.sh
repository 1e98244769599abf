#!/usr/bin/env bash
# Resident memory of a running wardend per account, at steady state: imports N generated users
# (each with a profile and in 2 of N/10 groups) through `warden import`, restarts the server on
# that database, sends a few requests and reads its VmRSS. Prints the empty server's, the
# after-import and the restarted figures. Release binaries: cargo build --release -p
# warden-server -p warden-cli (BIN= to use others). SQLite only; a fresh temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}; bin=${BIN:-$PWD/target/release}; port=${PORT:-18080}
dir=$(mktemp -d); trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
python3 - "$n" > "$dir/users.ndjson" <<'PY'
import json, random, sys
n = int(sys.argv[1]); g = max(2, n // 10); random.seed(7); records = 0
print('{"kind":"header","format":1}')
for i in range(g):
    print(json.dumps({"kind": "group", "name": f"g{i:06d}"})); records += 1
for i in range(n):
    name = f"u{random.getrandbits(24):06x}-{i}"
    print(json.dumps({"kind": "user", "name": name, "profile": {"display_name": f"User {i}", "first_name": "U", "last_name": str(i),
          "emails": [{"address": f"{name}@example.org", "primary": True}], "phones": [], "addresses": []}, "disabled": False})); records += 1
    for k in (0, 1):
        print(json.dumps({"kind": "member", "group": f"g{(i * 7 + k * 13) % g:06d}", "member": f"user:{name}"})); records += 1
print(json.dumps({"kind": "end", "records": records}))
PY
export WARDEN_DATABASE__URL="sqlite://$dir/warden.db" WARDEN_SERVER__LISTEN="127.0.0.1:$port"
export WARDEN_SERVER__CONTROL_SOCKET="$dir/wardend.sock" WARDEN_LOG=warn WARDEN_CONFIG_DIR="$dir/cli" WARDEN_SERVER="http://127.0.0.1:$port"
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
start() { "$bin/wardend" serve 2>>"$dir/log" & pid=$!; until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.2; done; }
start; sleep 2; empty=$(rss $pid)
pw=$("$bin/wardend" recover-account idm_admin 2>/dev/null)
printf '%s\n' 'correct horse battery' | "$bin/warden" --user "idm_admin:$pw" user create root --password-stdin >/dev/null
"$bin/wardend" superuser add root 2>/dev/null
printf '%s\n' 'correct horse battery' | "$bin/warden" login --user root --password-stdin 2>/dev/null
printf '%s\n' 'correct horse battery' | "$bin/warden" reauth --password-stdin 2>/dev/null
t0=$(date +%s.%N); "$bin/warden" --output json import "$dir/users.ndjson" >/dev/null; t1=$(date +%s.%N)
after_import=$(rss $pid)
kill -TERM $pid; wait $pid || true
start; sleep 3
for _ in $(seq 1 20); do "$bin/warden" --output json whoami >/dev/null; done
steady=$(rss $pid)
echo "users=$n import_secs=$(python3 -c "print(round($t1 - $t0, 1))") rss_kib: empty=$empty after_import=$after_import restarted=$steady" \
     "per_account_bytes_restarted=$(( (steady - empty) * 1024 / n ))"

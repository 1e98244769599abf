#!/usr/bin/env bash
# Checks the REST API against its own OpenAPI document: builds wardend and warden, starts wardend
# on SQLite in a temporary directory, validates the served document as OpenAPI 3.1
# (openapi-spec-validator), makes a service account an idm_superuser with a read-write API token
# (through the CLI, as an operator would), and runs schemathesis with that token.
# Fails on an invalid document, on any server error and on any response that the document does
# not describe (status, content type, schema, headers). schemathesis and openapi-spec-validator
# are installed into a virtualenv under ~/.cache (WARDEN_VENV) on first use;
# SCHEMATHESIS_MAX_EXAMPLES bounds the run.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/warden-target}"
venv="${WARDEN_VENV:-$HOME/.cache/warden-venv}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-100}"

if [ ! -x "$venv/bin/schemathesis" ] || [ ! -x "$venv/bin/openapi-spec-validator" ]; then
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'schemathesis>=4.3,<5' 'openapi-spec-validator>=0.7,<1'
fi
"$venv/bin/python" -c 'import pyotp' 2>/dev/null || "$venv/bin/pip" install --quiet 'pyotp>=2.9,<3'

cargo build --quiet -p warden-server -p warden-cli --bins
bin="$CARGO_TARGET_DIR/debug"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
export WARDEN_SERVER__LISTEN="127.0.0.1:$port"
export WARDEN_SERVER__CONTROL_SOCKET="$work/wardend.sock"
export WARDEN_DATABASE__URL="sqlite://$work/warden.db"
# Links (recovery, invitations, notices) need the public URL; their mail goes to the outbox here.
export WARDEN_SERVER__PUBLIC_URL="$url" WARDEN_MAIL__OUTBOX_DIR="$work/outbox"
# Passkeys need a relying party with a domain name (the public URL above is an address).
export WARDEN_WEBAUTHN__RP_ID=localhost WARDEN_WEBAUTHN__ORIGINS="http://localhost:$port"
# Cheap password hashing: the run logs in a few times and schemathesis tries many passwords.
export WARDEN_AUTH__ARGON2__MEMORY_KIB=1024 WARDEN_AUTH__ARGON2__ITERATIONS=1
export WARDEN_LOG="${WARDEN_LOG:-warn}"
export WARDEN_CONFIG_DIR="$work/cli" WARDEN_SERVER="$url"

"$bin/wardend" serve >"$work/wardend.log" 2>&1 &
server=$!
finish() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap finish EXIT
for _ in $(seq 100); do
    curl -fsS "$url/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "$url/healthz" >/dev/null || { cat "$work/wardend.log"; exit 1; }

echo "== openapi-spec-validator: the document is valid OpenAPI 3.1"
curl -fsS "$url/api/v1/openapi.json" >"$work/openapi.json"
"$venv/bin/openapi-spec-validator" --schema 3.1 "$work/openapi.json"

# A person and a service account, both idm_superusers (given from the host); the person, signed
# in and elevated, gives the service account a read-write token.
password='schemathesis correct horse'
idm=$("$bin/wardend" recover-account idm_admin 2>/dev/null)
"$bin/warden" login --user idm_admin --password-stdin <<<"$idm" >/dev/null
"$bin/warden" reauth --password-stdin <<<"$idm" >/dev/null
"$bin/warden" user create fuzz-operator --password "$password" >/dev/null
"$bin/warden" service-account create schemathesis --description "The API fuzzer" >/dev/null
"$bin/wardend" superuser add fuzz-operator 2>/dev/null
"$bin/wardend" superuser add schemathesis 2>/dev/null
"$bin/warden" login --user fuzz-operator --password-stdin <<<"$password" >/dev/null
"$bin/warden" reauth --password-stdin <<<"$password" >/dev/null
# An idm_superuser must use a second factor (auth.mfa_required_for_admin_roles): the operator
# enrols TOTP as a person would, with codes from pyotp, and re-authenticates with the next one.
secret=$("$bin/warden" self totp enrol | sed -n 's/^secret: //p')
totp() { "$venv/bin/python" -c "import pyotp, time; print(pyotp.TOTP('$secret').at(int(time.time()) + $1))"; }
"$bin/warden" self totp confirm "$(totp 0)" >/dev/null
"$bin/warden" reauth --password-stdin --totp "$(totp 30)" <<<"$password" >/dev/null
token=$("$bin/warden" service-account token create schemathesis --read-write --expires-in 1d --label schemathesis 2>/dev/null)

echo "== schemathesis against $url (at most $max_examples examples per operation)"
status=0
# From the temporary directory: schemathesis keeps a cache in the working directory.
# The hooks (scripts/schemathesis_hooks.py) teach schemathesis to send the import's NDJSON body.
hooks="$PWD/scripts"
(cd "$work" && PYTHONPATH="$hooks${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks \
    timeout 900 "$venv/bin/schemathesis" run "$url/api/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --max-examples "$max_examples" \
    --request-timeout 10 \
    --workers 2 \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --generation-database none \
    --no-color) || status=$?
if [ "$status" -ne 0 ]; then
    echo "== wardend's log (warnings and errors)"
    tail -n 50 "$work/wardend.log"
fi
exit "$status"

#!/usr/bin/env bash
# Makes sure nginx and Caddy are installed, as the forward-auth integration tests expect
# (crates/warden-server/tests/server/proxies.rs starts them itself, on loopback ports, with the
# configurations in docs/integrations/). Installs them from Debian's packages if absent and
# never starts, enables or leaves running their system services.
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v caddy >/dev/null 2>&1 || [ -x /usr/bin/caddy ] || missing+=(caddy)

if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages' maintainer scripts from starting the services: invoke-rc.d and
    # deb-systemd-invoke ask policy-rc.d, and 101 means "not allowed". An existing policy-rc.d
    # is left alone.
    policy=/usr/sbin/policy-rc.d
    own_policy=false
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        own_policy=true
    fi
    trap '[ "$own_policy" = true ] && rm -f "$policy"' EXIT
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    # Where the services were started regardless (systemd without policy-rc.d support), stop
    # them and keep them from starting at boot: the tests run their own instances.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        for service in "${missing[@]}"; do
            systemctl disable --now "$service" >/dev/null 2>&1 || true
        done
    fi
fi

nginx=$(command -v nginx || echo /usr/sbin/nginx)
caddy=$(command -v caddy || echo /usr/bin/caddy)
"$nginx" -V 2>&1 | grep -q -- --with-http_auth_request_module || {
    echo "error: $nginx lacks ngx_http_auth_request_module" >&2
    exit 1
}
echo "nginx $("$nginx" -v 2>&1 | sed 's/.*nginx\///') and caddy $("$caddy" version | cut -d' ' -f1) are installed"

#!/usr/bin/env bash
# Makes sure Debian's Chromium and ChromeDriver are installed, as the web UI's end-to-end tests
# expect (crates/warden-server/tests/server/ui/ starts chromedriver itself on a loopback port,
# and chromedriver starts /usr/bin/chromium headless). Installs them from Debian's packages if
# absent; never a browser build downloaded by a test tool.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)

if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

/usr/bin/chromium --version
/usr/bin/chromedriver --version

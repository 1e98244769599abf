#!/usr/bin/env bash
# Installs the SMTP server the mail tests talk to: PyPI's aiosmtpd, in the venv the other
# Python tools use. The tests start it themselves (scripts/smtp-sink.py) on a free port.
set -euo pipefail
venv="${WARDEN_VENV:-$HOME/.cache/warden-venv}"
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null || "$venv/bin/pip" install --quiet 'aiosmtpd>=1.4,<2'
echo "aiosmtpd: $("$venv/bin/python" -c 'import aiosmtpd; print(aiosmtpd.__version__)')"

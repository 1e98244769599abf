#!/usr/bin/env bash
# Installs the Python tools the tests use as independent peers, in the venv the other Python
# tools use: PyPI's aiosmtpd (the SMTP server the mail tests start, scripts/smtp-sink.py) and
# pyotp (TOTP codes computed by an implementation other than Warden's).
set -euo pipefail
venv="${WARDEN_VENV:-$HOME/.cache/warden-venv}"
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import aiosmtpd, pyotp' 2>/dev/null || "$venv/bin/pip" install --quiet 'aiosmtpd>=1.4,<2' 'pyotp>=2.9,<3'
echo "aiosmtpd: $("$venv/bin/python" -c 'import aiosmtpd; print(aiosmtpd.__version__)'), pyotp: installed"

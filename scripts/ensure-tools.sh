#!/usr/bin/env bash
# Makes sure the tools `make run` and `make test` build with are on the machine: Python 3.11+
# with venv, and Node.js with npm for the front-end bundle. Installs them with apt when
# running as root; otherwise names what is missing. Used by the Makefile.
set -euo pipefail

PYTHON=${PYTHON:-python3}
missing=()
as_root() { [ "$(id -u)" = 0 ]; }

if ! command -v "$PYTHON" >/dev/null; then
  missing+=(python3)
elif ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "!! $PYTHON is $("$PYTHON" -V 2>&1); the platform needs Python 3.11 or newer (set PYTHON=...)" >&2
  exit 1
elif ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  if as_root && command -v apt-get >/dev/null; then
    echo "==> installing ${missing[*]} (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "!! missing: ${missing[*]}. Install them (e.g. sudo apt-get install ${missing[*]}) and run make again." >&2
    exit 1
  fi
fi

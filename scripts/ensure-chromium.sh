#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (test tools may not download their own browsers).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "!! chromium is missing: install Debian's 'chromium' package (browser tests will be skipped)" >&2
  exit 0
fi
echo "==> installing Debian's chromium for the browser tests"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
chromium --version

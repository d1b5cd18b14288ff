#!/usr/bin/env bash
# Install Debian's chromium for the browser tests (tests/browser) when it is missing.
# Playwright's own browser download is not used: the tests launch /usr/bin/chromium.
# Idempotent: does nothing when /usr/bin/chromium is already there. Exits non-zero on failure.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "chromium already installed at $CHROMIUM"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-browser.sh: need root (or sudo) to apt-get install chromium" >&2
        exit 1
    fi
fi

$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

if [ ! -x "$CHROMIUM" ]; then
    echo "install-browser.sh: chromium was installed but $CHROMIUM is missing" >&2
    exit 1
fi
echo "installed: $("$CHROMIUM" --version 2>/dev/null || echo chromium)"

#!/usr/bin/env bash
# Refresh static/js/htmx.min.js from the npm package htmx.org at the pinned version.
# The file is committed; this script documents where it came from and re-fetches it.
set -euo pipefail
VERSION="${HTMX_VERSION:-2.0.11}"
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "htmx.org@${VERSION}" >/dev/null && tar xzf htmx.org-"${VERSION}".tgz)
cp "$tmp/package/dist/htmx.min.js" static/js/htmx.min.js
echo "$VERSION" > static/js/htmx.version
sha256sum static/js/htmx.min.js

#!/usr/bin/env bash
# Installs what the browser tests need, only what is missing (safe to run again):
#   - Debian's Chromium (apt package `chromium`) and Node.js with npm (apt `nodejs`, `npm`);
#   - playwright-core from the npm registry into .cache/node (no browser download: the tests drive
#     Debian's /usr/bin/chromium through executablePath).
# Usage: bash tests/browser/setup.sh      (the Makefile calls it before the browser tests)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NODE_DIR="${TIDEGATE_NODE_DIR:-$ROOT/.cache/node}"
PLAYWRIGHT_CORE_VERSION="1.65.1"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

missing_packages=()
command -v chromium >/dev/null 2>&1 || missing_packages+=(chromium)
command -v node >/dev/null 2>&1 || missing_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || missing_packages+=(npm)
if [ "${#missing_packages[@]}" -gt 0 ]; then
  echo "browser tests: installing ${missing_packages[*]} with apt-get"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing_packages[@]}"
fi

installed=""
if [ -f "$NODE_DIR/node_modules/playwright-core/package.json" ]; then
  installed="$(node -p "require('$NODE_DIR/node_modules/playwright-core/package.json').version")"
fi
if [ "$installed" != "$PLAYWRIGHT_CORE_VERSION" ]; then
  echo "browser tests: installing playwright-core@$PLAYWRIGHT_CORE_VERSION into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  [ -f "$NODE_DIR/package.json" ] || echo '{"private": true}' > "$NODE_DIR/package.json"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent \
    "playwright-core@$PLAYWRIGHT_CORE_VERSION"
fi

echo "browser tests: ready (chromium $(chromium --version 2>/dev/null | awk '{print $2}'), node $(node --version), playwright-core $PLAYWRIGHT_CORE_VERSION)"

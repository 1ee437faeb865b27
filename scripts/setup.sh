#!/usr/bin/env bash
# Prepares a fresh machine: pinned pnpm, the workspace's dependencies and, with --test, the
# Debian packages the test suite drives as independent peers (openssl, stunnel4, iperf3,
# prometheus/promtool, protoc, iptables, nftables).
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=10.34.8
TEST_PACKAGES=(openssl stunnel4 iperf3 prometheus protobuf-compiler iptables nftables iproute2 curl)

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm@$PNPM_VERSION with npm"
  npm install --global --no-fund --no-audit "pnpm@$PNPM_VERSION" >/dev/null
fi

if [ "${1:-}" = "--test" ]; then
  missing=()
  for pkg in "${TEST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

pnpm install --frozen-lockfile

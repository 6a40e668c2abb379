#!/usr/bin/env bash
# Fresh-machine set-up for `npm start` and `npm test`: npm packages, the TypeScript build, and an
# etcd server binary (Debian's etcd-server package) when none is on PATH. Idempotent and quiet
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

node node_modules/typescript/bin/tsc -p tsconfig.json
date -u +%FT%TZ > dist/.stamp   # bin/apisix compares sources against this (see its comment)

if ! command -v etcd >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing etcd from Debian's etcd-server package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq etcd-server >&2
  else
    echo "setup: no etcd binary found; install one (Debian/Ubuntu: 'sudo apt-get install etcd-server', or see https://etcd.io/docs/latest/install/) and run again" >&2
    exit 1
  fi
fi

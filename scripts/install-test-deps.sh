#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine: the Python package with
# its dev extra, and the system parts some tests start for real (each section says which).
# Safe to re-run: every step skips what is already there. Used by the README's test command
# and by .ci/run. Tests whose part is still missing skip with a reason naming this script.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

apt_packages=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || apt_packages+=("$2"); }
# (sections below add their packages with need_cmd COMMAND PACKAGE)

# Runtime image and docker target tests (tests/dockerd.py, tests/image/, tests/adapters/
# test_docker.py): a Docker engine the tests start themselves, debootstrap for the offline base
# image, and a registry for push tests.
need_cmd dockerd docker.io
need_cmd debootstrap debootstrap
need_cmd docker-registry docker-registry

# Azure target tests (tests/adapters/test_azure.py): Azurite stands in for Blob Storage. It is
# the npm package "azurite" (command azurite-blob); npm itself comes from Debian.
AZURITE_PREFIX="${XDG_CACHE_HOME:-$HOME/.cache}/cloudserve-test/azurite"
if ! command -v azurite-blob >/dev/null 2>&1 && [ ! -x "$AZURITE_PREFIX/node_modules/.bin/azurite-blob" ]; then
  need_cmd npm npm
  install_azurite=1
fi

if [ "${#apt_packages[@]}" -gt 0 ] && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
elif [ "${#apt_packages[@]}" -gt 0 ]; then
  echo "install-test-deps: not root; missing Debian packages: ${apt_packages[*]}" >&2
fi

python3 -m pip install -q -e '.[dev]'

# Azure target tests: install Azurite globally as root, else into the cache prefix the tests
# also look in.
if [ "${install_azurite:-0}" = 1 ] && command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    npm install -g --silent --no-fund --no-audit azurite@3 >/dev/null
  else
    npm install --silent --no-fund --no-audit --prefix "$AZURITE_PREFIX" azurite@3 >/dev/null
  fi
fi

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

if [ "${#apt_packages[@]}" -gt 0 ] && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
elif [ "${#apt_packages[@]}" -gt 0 ]; then
  echo "install-test-deps: not root; missing Debian packages: ${apt_packages[*]}" >&2
fi

python3 -m pip install -q -e '.[dev]'

#!/usr/bin/env bash
# Runs berth's whole test suite, as root, on Debian 12: installs the packages the tests need
# (when missing), then `cargo test --workspace`. Tests need root: they create namespaces,
# cgroups and mounts, and boot a qemu guest for the pure cgroup v2 tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test.sh: run as root (the tests use namespaces, cgroups and mounts)" >&2; exit 1; }
missing=()
while read -r pkg; do
  case $pkg in ''|'#'*) continue ;; esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < scripts/packages-test.txt
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  bash scripts/install-packages.sh "${missing[@]}"
fi
# The Docker API clients the API tests drive (docker-py, pytest, compose v2).
bash scripts/install-clients.sh
exec cargo test --workspace --no-fail-fast

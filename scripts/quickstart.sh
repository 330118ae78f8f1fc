#!/usr/bin/env bash
# One command for a fresh Debian 12 machine, as root: install what berth needs, build and
# install berth, berth-runtime, berth-monitor, berth-dns and berth-api into /usr/local/bin, make a busybox image
# locally (no registry needed) and run a real container from it, in the foreground and
# detached.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/quickstart.sh: run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends build-essential ca-certificates curl busybox-static nftables
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] || curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
cargo build --release -p berth-cli -p berth-runtime -p berth-dns -p berth-api
# The per-container monitor, linked statically: it idles beside every detached container
# and a static binary keeps less resident (see bench/README.md).
cargo rustc --release -p berth-monitor --bin berth-monitor -- -C target-feature=+crt-static
install -m 0755 target/release/berth target/release/berth-runtime target/release/berth-monitor \
  target/release/berth-dns target/release/berth-api /usr/local/bin/

# A busybox image, built here: busybox-static and its applet links, imported as one layer.
rootfs=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/"{proc,sys,dev,tmp,etc,root}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $("$rootfs/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
tar -C "$rootfs" -c . | berth import --change 'CMD ["sh"]' - busybox:latest
# A detached container under its monitor, stopped and removed again.
id=$(berth run -d busybox sleep 60)
berth ps -q --no-trunc | grep -qx "$id"
berth rm -f "$id" >/dev/null
# A web server on the default bridge, published on a free port of 127.0.0.1 (kernel DNAT).
id=$(berth run -d -p 127.0.0.1::80 busybox sh -c 'echo "hello over a published port" > /tmp/index.html; httpd -f -p 80 -h /tmp')
port=$(berth port "$id" 80 | cut -d: -f2)
for _ in 1 2 3 4 5 6 7 8 9 10; do curl -fsS "http://127.0.0.1:$port/" && break; sleep 0.3; done
berth rm -f "$id" >/dev/null
berth run --rm busybox sh -c 'echo "hello from a berth container: pid $$, host $(hostname), $(ls /sys/class/net | wc -l) network link(s)"'

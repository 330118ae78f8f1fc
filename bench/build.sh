#!/usr/bin/env bash
# Benchmark (not a test): `berth build` vs `podman build` (buildah inside), side by side in
# one run on this machine. See bench/README.md.
#
# usage: bench/build.sh [-r RUNS] [-k]
#   -r RUNS  timed runs per tool and case (default 7, at least 5); medians are printed
#   -k       keep the work directory
# env:
#   BERTH    berth binary (default target/release/berth of this repository, which finds
#            berth-runtime beside it; build both: cargo build --release -p berth-cli -p berth-runtime)
#   PODMAN   podman binary (default: podman on PATH; without it berth's figures only)
#   BUSYBOX  static busybox (default /bin/busybox, Debian busybox-static)
#
# What it measures, for a 10-instruction Dockerfile on a busybox base (FROM, ARG, ENV,
# WORKDIR, 2 x COPY of a small context, RUN, LABEL, EXPOSE, CMD; the same base imported
# into both stores):
#   cold     `build --no-cache`: every step runs (one RUN container, two COPY layers)
#   cached   `build` of the unchanged context again: every step from the cache
#            (target for berth: under 100 ms)
#   one-file `build` after changing the file the second COPY takes: that COPY, the RUN
#            and the steps after them run again
# podman runs as in bench/images.sh: a private store, CONTAINERS_CONF with the ulimits root
# can set, --network none, --pull=never, --runtime runc, --cgroup-manager cgroupfs.
# Nothing is pulled; no packet leaves the machine.
set -euo pipefail

RUNS=7
KEEP=0
while getopts "r:kh" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    k) KEEP=1 ;;
    h) sed -n '2,25p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
[ "$RUNS" -ge 5 ] || { echo "build.sh: -r must be at least 5" >&2; exit 2; }

. "$(dirname "$0")/lib.sh"
need_root
need_berth
need_busybox
[ -n "$PODMAN" ] || echo "note: podman is not installed: berth's figures only" >&2

make_work berth-bench-build
podman_setup
b() { "$BERTH" --root "$work/berth" "$@"; }
p() { podman_in "$work/podman" --runtime runc "$@"; }
cleanup() {
  set +e
  if [ -n "$PODMAN" ] && [ -d "$work/podman" ]; then p system reset -f >/dev/null 2>&1; fi
  # berth's networks (RUN steps run on the default bridge): bridge and nftables table
  [ -d "$work/berth" ] && b system reset -f >/dev/null 2>&1
  unmount_under "$work"
  if [ $KEEP = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the base image (busybox) in both stores, and the context
rootfs=$work/rootfs
busybox_rootfs "$rootfs"
tar -C "$rootfs" -cf "$work/base.tar" .
rm -rf "$rootfs"
b import "$work/base.tar" localhost/bench-base:latest >>"$log"
[ -n "$PODMAN" ] && p import "$work/base.tar" localhost/bench-base:latest >>"$log"

ctx=$work/ctx
mkdir -p "$ctx/src"
for i in $(seq 1 20); do head -c 4096 /dev/urandom | base64 >"$ctx/src/file$i.txt"; done
echo "config 0" >"$ctx/config.txt"
cat >"$ctx/Dockerfile" <<'DF'
FROM localhost/bench-base:latest
ARG VERSION=1
ENV APP=/app
WORKDIR /app
COPY src/ ./src/
COPY config.txt ./
RUN cat config.txt > /app/built && ls src > /app/list
LABEL version=$VERSION
EXPOSE 8080
CMD ["cat", "/app/built"]
DF

bb() { b build -t localhost/bench-built:latest "$@" "$ctx"; }
pb() { p build --network none --pull=never --layers -t localhost/bench-built:latest "$@" "$ctx"; }

progress "warm-up: one build each"
bb >>"$log"
[ -n "$PODMAN" ] && pb >>"$log"

progress "cold (--no-cache), cached, one changed file: $RUNS runs each, tools alternating"
for i in $(seq "$RUNS"); do
  sample berth-cold bb --no-cache
  [ -n "$PODMAN" ] && sample podman-cold pb --no-cache
  sample berth-cached bb
  [ -n "$PODMAN" ] && sample podman-cached pb
  echo "config $i" >"$ctx/config.txt"
  sample berth-onefile bb
  [ -n "$PODMAN" ] && sample podman-onefile pb
done
# The cached build really ran nothing: every step says so.
steps=$(bb | grep -c -- '---> Using cache' || true)
[ "$steps" = 9 ] || echo "WARNING: berth's cached build used the cache for $steps of 9 steps" >&2
b run --rm localhost/bench-built:latest | grep -q "config $RUNS" || echo "WARNING: the built image does not hold the last config" >&2

echo
echo "berth $("$BERTH" --version 2>/dev/null | awk '{print $NF}') ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?)) vs ${PODMAN:+$("$PODMAN" --version)}"
echo "$(nproc) CPUs, kernel $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), storage on $(findmnt -n -o FSTYPE -T "$work"), podman driver $pdriver"
echo "10-instruction Dockerfile on busybox, context of 21 small files; medians of $RUNS runs (ms)"
echo
row() {
  local label=$1 name=$2 bm pm
  bm=$(median "berth-$name")
  pm=$(median "podman-$name")
  awk -v l="$label" -v b="$bm" -v p="$pm" 'BEGIN {
    line = sprintf("%-26s %10s", l, b == "" ? "-" : sprintf("%.1f", b))
    line = line sprintf(" %10s", p == "" ? "-" : sprintf("%.1f", p))
    line = line sprintf(" %8s", (b != "" && p != "" && b > 0) ? sprintf("%.2fx", p / b) : "-")
    print line
  }'
}
printf '%-26s %10s %10s %8s\n' build berth podman "podman/berth"
row "cold (--no-cache)" cold
row "fully cached" cached
row "one COPY'd file changed" onefile
echo
echo "(podman/berth > 1: berth is faster. Target: a fully cached berth build under 100 ms)"
echo
echo "samples (ms):"
for f in "$work"/t-*; do printf '  %-22s %s\n' "${f##*/t-}" "$(samples "${f##*/t-}")"; done

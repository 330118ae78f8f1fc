#!/usr/bin/env bash
# Benchmark (not a test): `berth pull` vs `podman pull` (and `skopeo copy` to a directory,
# download only) of the same ~200 MiB, 5-layer image from a local registry, side by side
# in one run. See bench/README.md.
#
# usage: bench/registry.sh [-r RUNS] [-m MB] [-k]
#   -r RUNS  timed runs per tool and image (default 5, at least 5); medians are printed
#   -m MB    MiB of data per layer (default 40: 5 layers, ~200 MiB)
#   -k       keep the work directory
# env:
#   BERTH     berth binary (default target/release/berth of this repository;
#             cargo build --release -p berth-cli -p berth-runtime)
#   PODMAN    podman binary (default: podman on PATH; without it berth's figures only)
#   SKOPEO    skopeo binary (default: skopeo on PATH; optional)
#   REGISTRY  the registry (default /usr/bin/docker-registry, Debian docker-registry)
#   BUSYBOX   static busybox (default /bin/busybox, Debian busybox-static)
#   TMPDIR    where the work directory goes (default /tmp; ~2 GB)
#
# The image: busybox + MB MiB of base64 text (random, so gzip makes it ~3/4) per layer,
# 5 layers, made by berth (import, then 4 x run + commit). It is in the registry twice:
#   plain  pushed by berth: uncompressed tar layers, as berth stores commits
#   gzip   the same image with each layer gzip -6'd (from berth's save; loaded, pushed)
# (the image IDs are the same). Each timed pull goes into a fresh store (berth: a new
# --root; podman: a private store as in images.sh, reset between runs); `sync` runs
# before each. The registry listens on 127.0.0.1 only; nothing leaves the machine.
set -euo pipefail

RUNS=5
MB=40
KEEP=0
while getopts "r:m:kh" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    m) MB=$OPTARG ;;
    k) KEEP=1 ;;
    h) sed -n '2,27p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
[ "$RUNS" -ge 5 ] || { echo "registry.sh: -r must be at least 5" >&2; exit 2; }

. "$(dirname "$0")/lib.sh"
SKOPEO=${SKOPEO:-$(command -v skopeo || true)}
REGISTRY=${REGISTRY:-/usr/bin/docker-registry}
need_root
need_berth
[ -x "$REGISTRY" ] || die "no registry at $REGISTRY (apt-get install docker-registry)"
need_busybox
need_tools jq curl
[ -n "$PODMAN" ] || echo "note: podman is not installed: no podman figures" >&2
[ -n "$SKOPEO" ] || echo "note: skopeo is not installed: no skopeo figures" >&2

make_work berth-bench-registry
podman_setup
regpid=

b() { "$BERTH" --root "$work/berth-$1" "${@:2}"; }   # b STORE ARGS...
p() { podman_in "$work/podman-$1" --runtime runc "${@:2}"; }   # p STORE ARGS...
p_reset() { podman_reset "$work/podman-$1"; }   # p_reset STORE
b_reset() { berth_reset "$work/berth-$1"; }   # b_reset STORE
cleanup() {
  set +e
  [ -n "$regpid" ] && kill "$regpid" 2>/dev/null && wait "$regpid" 2>/dev/null
  if [ -n "$PODMAN" ]; then
    for d in "$work"/podman-*; do [ -d "$d" ] && p_reset "${d##*/podman-}"; done
  fi
  for d in "$work"/berth-*; do [ -d "$d" ] && b_reset "${d##*/berth-}"; done
  unmount_under "$work"
  if [ $KEEP = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the registry, on a free loopback port, storage in the work directory
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cat >"$work/registry.yml" <<CONF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $reg
CONF
"$REGISTRY" serve "$work/registry.yml" >>"$log" 2>&1 &
regpid=$!
for _ in $(seq 100); do curl -fs "http://$reg/v2/" >/dev/null && break; sleep 0.1; done
curl -fs "http://$reg/v2/" >/dev/null || die "the registry did not start"

# --- the image
progress "building the 5-layer image ($MB MiB per layer) with berth"
rootfs=$work/rootfs
busybox_rootfs "$rootfs"
mkdir "$rootfs/data0"
per=$((MB * 1024 * 1024 / 4))
raw=$((per * 3 / 4))
for f in a b c d; do head -c $raw /dev/urandom | base64 -w 76 >"$rootfs/data0/$f"; done
tar -C "$rootfs" -cf "$work/base.tar" .
rm -rf "$rootfs"
b gen import "$work/base.tar" localhost/bench-big:0 >>"$log"
rm -f "$work/base.tar"
for i in 1 2 3 4; do
  b gen run --name "gen$i" "localhost/bench-big:$((i - 1))" sh -c \
    "mkdir /data$i && for f in a b c d; do head -c $raw /dev/urandom | base64 > /data$i/\$f; done" >>"$log"
  b gen commit "gen$i" "localhost/bench-big:$i" >>"$log"
  b gen rm "gen$i" >>"$log"
done
plain=$reg/bench/plain:latest
gzip=$reg/bench/gzip:latest
b gen tag localhost/bench-big:4 "$plain"
progress "push (berth): $plain"
b gen push "$plain" >>"$log"
progress "gzip layers (gzip -6 of each layer of berth's save, loaded and pushed by berth): $gzip"
b gen save -o "$work/big.tar" "$plain"
mkdir -p "$work/x" "$work/gz"
tar -C "$work/x" -xf "$work/big.tar"
rm -f "$work/big.tar"
cp "$work/x/$(jq -r '.[0].Config' "$work/x/manifest.json")" "$work/gz/config.json"
i=0
list=
for l in $(jq -r '.[0].Layers[]' "$work/x/manifest.json"); do
  gzip -6 -n <"$work/x/$l" >"$work/gz/l$i.tar"
  list="$list\"l$i.tar\","
  i=$((i + 1))
done
printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":[%s]}]' "$gzip" "${list%,}" >"$work/gz/manifest.json"
tar -C "$work/gz" -cf "$work/big-gz.tar" .
rm -rf "$work/x" "$work/gz"
b gz load -i "$work/big-gz.tar" >>"$log"
b gz push "$gzip" >>"$log"
b_reset gz
rm -f "$work/big-gz.tar"
images="plain gzip"
b_reset gen
want_id=

layer_bytes() { # layer_bytes REF: sum of the manifest's layer sizes
  local r=${1#*/} name tag
  name=${r%:*}
  tag=${r##*:}
  curl -fs -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$reg/v2/$name/manifests/$tag" | jq '[.layers[].size] | add'
}

for img in $images; do
  ref=$reg/bench/$img:latest
  progress "pull $img: $RUNS runs each"
  for i in $(seq "$RUNS"); do
    b_reset pull
    sample "berth-$img" b pull pull -q "$ref"
    if [ -n "$PODMAN" ]; then
      p_reset pull
      sample "podman-$img" p pull pull -q --tls-verify=false "$ref"
    fi
    if [ -n "$SKOPEO" ]; then
      rm -rf "$work/skopeo-dir"
      sample "skopeo-$img" "$SKOPEO" copy -q --src-tls-verify=false "docker://$ref" "dir:$work/skopeo-dir"
    fi
  done
  bid=$(b pull image inspect --format '{{.Id}}' "$ref")
  [ -z "$want_id" ] && want_id=$bid
  [ "$bid" = "$want_id" ] || echo "WARNING: $img: berth's image ID $bid differs from $want_id" >&2
  if [ -n "$PODMAN" ]; then
    pid=$(p pull image inspect --format '{{.Id}}' "$ref")
    [ "sha256:${pid#sha256:}" = "$bid" ] || echo "WARNING: $img: image IDs differ: berth $bid podman $pid" >&2
    p_reset pull
  fi
  echo "$img $(layer_bytes "$ref")" >>"$work/sizes"
  b_reset pull
done
rm -rf "$work/skopeo-dir"

# --- summary
echo
echo "berth $("$BERTH" --version 2>/dev/null | awk '{print $NF}') ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?)) vs ${PODMAN:+$("$PODMAN" --version)} ${SKOPEO:+/ $("$SKOPEO" --version)}"
echo "$(nproc) CPUs, kernel $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), storage on $(findmnt -n -o FSTYPE -T "$work"), podman driver $pdriver"
echo "registry: $("$REGISTRY" --version 2>/dev/null | head -1) on $reg; medians of $RUNS runs (ms); MB/s of layer bytes transferred"
echo
printf '%-22s %10s %10s %9s %10s   %s\n' image berth podman "pod/berth" skopeo-dir "throughput (MB/s)"
while read -r img bytes; do
  bm=$(median "berth-$img")
  pm=$(median "podman-$img")
  sm=$(median "skopeo-$img")
  awk -v l="pull $img ($(awk -v x="$bytes" 'BEGIN { printf "%.0f MB", x / 1e6 }'))" -v b="$bm" -v p="$pm" -v s="$sm" -v by="$bytes" 'BEGIN {
    mb = by / 1e6
    line = sprintf("%-22s %10s %10s", l, b == "" ? "-" : sprintf("%.1f", b), p == "" ? "-" : sprintf("%.1f", p))
    line = line sprintf(" %9s", (b != "" && p != "" && b > 0) ? sprintf("%.2fx", p / b) : "-")
    line = line sprintf(" %10s", s == "" ? "-" : sprintf("%.1f", s))
    line = line sprintf("   berth %5.0f", b > 0 ? mb / (b / 1000) : 0)
    if (p != "" && p > 0) line = line sprintf("  podman %5.0f", mb / (p / 1000))
    if (s != "" && s > 0) line = line sprintf("  skopeo %5.0f", mb / (s / 1000))
    print line
  }'
done <"$work/sizes"
echo
echo "(pod/berth > 1: berth is faster; target >= 1.5x. skopeo-dir only downloads into a directory: no unpacking)"
echo
echo "samples (ms):"
for f in "$work"/t-*; do printf '  %-16s %s\n' "${f##*/t-}" "$(samples "${f##*/t-}")"; done

#!/usr/bin/env bash
# Benchmark (not a test): berth's image and layer operations vs podman's, side by side in
# one run on this machine. See bench/README.md.
#
# usage: bench/images.sh [-r RUNS] [-m MB] [-k]
#   -r RUNS  timed runs per tool and operation (default 5, at least 5); medians are printed
#   -m MB    MiB of random data per layer of the big image (default 40: 5 layers, ~200 MiB)
#   -k       keep the work directory
# env:
#   BERTH    berth binary (default target/release/berth of this repository, which finds
#            berth-runtime beside it; build both: cargo build --release -p berth-cli -p berth-runtime)
#   PODMAN   podman binary (default: podman on PATH; without it berth's figures only)
#   BUSYBOX  static busybox (default /bin/busybox, Debian busybox-static)
#   TMPDIR   where the work directory goes (default /tmp; must not be tmpfs-limited: ~1.5 GB)
#
# What it measures (fresh stores for every load run; runs of berth and podman alternate, and
# `sync` runs before each timed command so one tool's writeback does not land on the other):
#   load      `load -i` of the same ~200 MiB, 5-layer docker-archive (made by berth: import of
#             busybox + random files, then 4 x run + commit writing random files), and of
#             the same image as an oci-archive (berth save --format oci-archive)
#   save      `save -o` of that image (docker-archive)
#   create50  `create` + `rm` of a container on a 50-layer image (neither mounts the rootfs)
#   run50     `run --rm IMAGE true` on the 50-layer image (mounts the rootfs, runs, removes)
#   commit    `commit` of a container whose change is 100 MiB of random data (target < 1 s)
# and the storage crate's own create+mount+unmount+remove median on 50 layers (example
# layers50, when cargo is there). podman runs as in the interoperability test: a private
# store (--root/--runroot/--tmpdir/--network-config-dir), CONTAINERS_CONF with the ulimits
# root can set, --network none, --pull=never, --runtime runc (crun 1.8 refuses the hybrid
# cgroup layout), --cgroup-manager cgroupfs, --events-backend file. Nothing is pulled.
set -euo pipefail

RUNS=5
MB=40
KEEP=0
while getopts "r:m:kh" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    m) MB=$OPTARG ;;
    k) KEEP=1 ;;
    h) sed -n '2,30p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
[ "$RUNS" -ge 5 ] || { echo "images.sh: -r must be at least 5" >&2; exit 2; }

. "$(dirname "$0")/lib.sh"
need_root
need_berth
need_busybox
[ -n "$PODMAN" ] || echo "note: podman is not installed: berth's figures only" >&2

make_work berth-bench-images
podman_setup

# --- the tools, each with its own stores under $work
b() { "$BERTH" --root "$work/berth-$1" "${@:2}"; }   # b STORE ARGS...
p() { podman_in "$work/podman-$1" --runtime runc "${@:2}"; }   # p STORE ARGS...
p_reset() { podman_reset "$work/podman-$1"; }   # p_reset STORE
b_reset() { berth_reset "$work/berth-$1"; }   # b_reset STORE

cleanup() {
  set +e
  if [ -n "$PODMAN" ]; then
    for d in "$work"/podman-*; do [ -d "$d" ] && p_reset "${d##*/podman-}"; done
  fi
  for d in "$work"/berth-*; do [ -d "$d" ] && b_reset "${d##*/berth-}"; done
  unmount_under "$work"
  if [ $KEEP = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the big image: busybox + MB MiB of random files per layer, 5 layers, made by berth
progress "building the 5-layer image ($MB MiB of random data per layer) with berth"
rootfs=$work/rootfs
busybox_rootfs "$rootfs"
mkdir "$rootfs/data0"
tar -C "$rootfs" -cf "$work/small.tar" --exclude ./data0 .
per=$((MB * 1024 * 1024 / 4))
for f in a b c d; do head -c $per /dev/urandom >"$rootfs/data0/$f"; done
tar -C "$rootfs" -cf "$work/base.tar" .
rm -rf "$rootfs"
b gen import "$work/base.tar" localhost/bench-big:0 >>"$log"
for i in 1 2 3 4; do
  b gen run --name "gen$i" "localhost/bench-big:$((i - 1))" sh -c \
    "mkdir /data$i && for f in a b c d; do head -c $per /dev/urandom > /data$i/\$f; done" >>"$log"
  b gen commit "gen$i" "localhost/bench-big:$i" >>"$log"
  b gen rm "gen$i" >>"$log"
done
b gen tag localhost/bench-big:4 localhost/bench-big:latest
b gen save -o "$work/big.tar" localhost/bench-big:latest
b gen save --format oci-archive -o "$work/big-oci.tar" localhost/bench-big:latest
rm -f "$work/base.tar"
big_bytes=$(stat -c %s "$work/big.tar")
big_mb=$(awk -v b="$big_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
layers=$(b gen image inspect --format "{{.RootFS}}" localhost/bench-big:latest | grep -o "sha256:" | wc -l)
progress "big.tar: $big_mb MiB"

# --- load: fresh stores every run, berth and podman alternating
progress "load -i big.tar (docker-archive) and big-oci.tar (oci-archive): $RUNS runs each"
for i in $(seq "$RUNS"); do
  b_reset load
  sample berth-load b load load -i "$work/big.tar"
  if [ -n "$PODMAN" ]; then
    p_reset load
    sample podman-load p load load -i "$work/big.tar"
  fi
  b_reset loadoci
  sample berth-loadoci b loadoci load -i "$work/big-oci.tar"
  if [ -n "$PODMAN" ]; then
    p_reset loadoci
    sample podman-loadoci p loadoci load -i "$work/big-oci.tar"
  fi
done
b_reset loadoci
[ -n "$PODMAN" ] && p_reset loadoci
# Check that both hold the image with the same ID.
bid=$(b load image inspect --format '{{.Id}}' localhost/bench-big:latest)
if [ -n "$PODMAN" ]; then
  pid=$(p load image inspect --format '{{.Id}}' localhost/bench-big:latest)
  [ "sha256:${pid#sha256:}" = "$bid" ] || echo "WARNING: image IDs differ: berth $bid podman $pid" >&2
fi

# --- save of the loaded image
progress "save -o: $RUNS runs each"
for i in $(seq "$RUNS"); do
  rm -f "$work/out.tar"
  sample berth-save b load save -o "$work/out.tar" localhost/bench-big:latest
  if [ -n "$PODMAN" ]; then
    rm -f "$work/out.tar"
    sample podman-save p load save -o "$work/out.tar" localhost/bench-big:latest
  fi
done
rm -f "$work/out.tar"
b_reset gen

# --- 50 layers: busybox + 49 commits of a small file, made by berth, saved, loaded by podman
progress "building a 50-layer image with berth (49 x run + commit)"
b l50 import "$work/small.tar" localhost/bench-l50:1 >>"$log"
for i in $(seq 2 50); do
  b l50 run --name "l$i" "localhost/bench-l50:$((i - 1))" sh -c "echo $i > /f$i" >>"$log"
  b l50 commit "l$i" "localhost/bench-l50:$i" >>"$log"
  b l50 rm "l$i" >>"$log"
done
l50=localhost/bench-l50:50
b l50 save -o "$work/l50.tar" "$l50"
[ -n "$PODMAN" ] && p l50 load -i "$work/l50.tar" >>"$log"
progress "create + rm, run --rm true on 50 layers: $RUNS runs each"
berth_create_rm() { local id; id=$(b l50 create "$l50" true) && b l50 rm "$id"; }
podman_create_rm() { local id; id=$(p l50 create --pull=never --network none "$l50" true) && p l50 rm "$id"; }
podman_create_mount_rm() {
  local id
  id=$(p l50 create --pull=never --network none "$l50" true) && p l50 mount "$id" && p l50 rm "$id"
}
for i in $(seq "$RUNS"); do
  sample berth-create50 berth_create_rm
  sample berth-run50 b l50 run --rm --network none "$l50" cat /f50
  if [ -n "$PODMAN" ]; then
    sample podman-create50 podman_create_rm
    sample podman-createmount50 podman_create_mount_rm
    sample podman-run50 p l50 run --rm --pull=never --network none "$l50" cat /f50
  fi
done
layers50_line=""
if command -v cargo >/dev/null && [ -f "$repo/crates/storage/examples/layers50.rs" ]; then
  progress "storage example layers50 (create+mount+unmount+remove, 20 runs)"
  layers50_line=$(cd "$repo" && cargo run -q --release -p berth-storage --example layers50 overlay "$work" 2>>"$log" || true)
fi

# --- commit of a 100 MiB change
progress "commit of a 100 MiB change: $RUNS runs each"
change='head -c 104857600 /dev/urandom > /big'
for i in $(seq "$RUNS"); do
  b l50 run --name cm "$l50" sh -c "$change" >>"$log"
  sample berth-commit b l50 commit cm "localhost/bench-commit:$i"
  b l50 rm cm >>"$log"
  b l50 rmi "localhost/bench-commit:$i" >>"$log"
  if [ -n "$PODMAN" ]; then
    p l50 run --name cm --pull=never --network none "$l50" sh -c "$change" >>"$log"
    sample podman-commit p l50 commit -q cm "localhost/bench-commit:$i"
    p l50 rm cm >>"$log"
    p l50 rmi "localhost/bench-commit:$i" >>"$log"
  fi
done

# --- summary
echo
echo "berth $("$BERTH" --version 2>/dev/null | awk '{print $NF}') ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?)) vs ${PODMAN:+$("$PODMAN" --version)}"
echo "$(nproc) CPUs, kernel $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), storage on $(findmnt -n -o FSTYPE -T "$work"), podman driver $pdriver"
echo "big image: $big_mb MiB docker-archive, $layers layers; medians of $RUNS runs (ms)"
echo
row() { # row LABEL NAME [MB]: berth median, podman median, podman/berth, MB/s
  local label=$1 name=$2 mb=${3:-} bm pm
  bm=$(median "berth-$name")
  pm=$(median "podman-$name")
  awk -v l="$label" -v b="$bm" -v p="$pm" -v mb="$mb" 'BEGIN {
    line = sprintf("%-26s %10s", l, b == "" ? "-" : sprintf("%.1f", b))
    line = line sprintf(" %10s", p == "" ? "-" : sprintf("%.1f", p))
    line = line sprintf(" %8s", (b != "" && p != "" && b > 0) ? sprintf("%.2fx", p / b) : "-")
    if (mb != "" && b > 0) line = line sprintf("   berth %6.0f MB/s", mb / (b / 1000))
    if (mb != "" && p != "" && p > 0) line = line sprintf("  podman %6.0f MB/s", mb / (p / 1000))
    print line
  }'
}
printf '%-26s %10s %10s %8s\n' operation berth podman "podman/berth"
big_dec_mb=$(awk -v b="$big_bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
oci_dec_mb=$(awk -v b="$(stat -c %s "$work/big-oci.tar")" 'BEGIN { printf "%.1f", b / 1e6 }')
row "load -i (docker-archive)" load "$big_dec_mb"
row "load -i (oci-archive)" loadoci "$oci_dec_mb"
row "save -o (docker-archive)" save "$big_dec_mb"
row "create + rm, 50 layers" create50
row "podman create+mount+rm" createmount50
row "run --rm, 50 layers" run50
row "commit, 100 MiB change" commit
echo
echo "(podman/berth > 1: berth is faster. MB = 10^6 bytes of archive. Targets: load >= 1.5x, commit < 1000 ms)"
[ -n "$layers50_line" ] && echo "storage example layers50: $layers50_line"
echo
echo "samples (ms):"
for f in "$work"/t-*; do printf '  %-22s %s\n' "${f##*/t-}" "$(samples "${f##*/t-}")"; done

#!/usr/bin/env bash
# Benchmark (not a test): `berth-runtime run` vs `crun run` vs `runc run` on the same
# busybox bundle running /bin/true, in one run on this machine. See bench/README.md.
#
# usage: bench/runtime.sh [-r RUNS] [-w WARMUP] [-k]
#   -r RUNS    timed runs per runtime (default 30, at least 20)
#   -w WARMUP  warmup runs per runtime (default 3)
#   -k         keep the work directory (bundle, wrappers, hyperfine JSON)
# env:
#   BERTH_RUNTIME  berth-runtime binary (default: target/release/berth-runtime of this
#                  repository; build it with `cargo build --release -p berth-runtime`)
#   CRUN, RUNC     peer binaries (default: crun and runc on PATH)
#   BUSYBOX        static busybox (default /bin/busybox, Debian busybox-static)
#
# Needs root, hyperfine and jq. crun 1.8 refuses this host's hybrid cgroup layout while
# cgroup2 holds hugetlb, so for crun's runs only the script mounts hugetlb as a v1
# hierarchy (/sys/fs/cgroup/hugetlb) and undoes it right after (and on any exit).
set -euo pipefail

RUNS=30
WARMUP=3
KEEP=0
while getopts "r:w:kh" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    k) KEEP=1 ;;
    h) sed -n '2,20p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
if [ "$RUNS" -lt 20 ]; then
  echo "runtime.sh: -r must be at least 20" >&2
  exit 2
fi

. "$(dirname "$0")/lib.sh"
BERTH=${BERTH_RUNTIME:-$repo/target/release/berth-runtime}
CRUN=${CRUN:-$(command -v crun || true)}
RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}

need_tools hyperfine jq
need_root
need_busybox

make_work berth-bench

cleanup() {
  undo_hugetlb || echo "$me: WARNING: could not undo the hugetlb v1 mount" >&2
  for st in "$work"/state-*; do
    [ -d "$st" ] || continue
    name=${st##*/state-}
    bin=$(cat "$work/bin-$name" 2>/dev/null || true)
    [ -n "$bin" ] || continue
    for id in $("$bin" --root "$st" list -q 2>/dev/null || true); do
      "$bin" --root "$st" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  if [ $KEEP = 1 ]; then
    echo "work directory kept: $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the bundle: busybox + applet symlinks (as berth_fixtures::busybox_rootfs), runc spec
bundle=$work/bundle
rootfs=$bundle/rootfs
busybox_rootfs "$rootfs"
echo berth >"$rootfs/etc/hostname"
"$RUNC" spec --bundle "$bundle"
jq '.process.args = ["/bin/true"] | .process.terminal = false | .root.readonly = false' \
  "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"

# --- one wrapper per runtime: a fresh container ID per run (`run` deletes it on exit)
wrapper() { # NAME BINARY
  local name=$1 bin=$2
  mkdir -p "$work/state-$name"
  echo "$bin" >"$work/bin-$name"
  cat >"$work/run-$name" <<EOF
#!/bin/sh
exec "$bin" --root "$work/state-$name" run --bundle "$bundle" "bench-$name-\$\$" >/dev/null
EOF
  chmod +x "$work/run-$name"
}
# The wrapper alone (exec of /bin/true) is measured too: its cost is in every figure.
cat >"$work/run-baseline" <<'EOF'
#!/bin/sh
exec /bin/true
EOF
chmod +x "$work/run-baseline"

# crun 1.8 on the hybrid layout: move hugetlb to a v1 hierarchy (PEERS.md). That is
# impossible while hugetlb is enabled in a cgroup2 subtree_control (e.g. a cgroup left by
# some test under /sys/fs/cgroup/unified); then crun runs in a private mount namespace
# where /sys/fs/cgroup/unified is unmounted, so it sees a plain v1 layout. Either way the
# host is left as it was.
# (hugetlb_to_v1 and undo_hugetlb are in lib.sh)
cat >"$work/hide-unified" <<'EOF'
#!/bin/sh
# Runs "$@" in the caller's private mount namespace without the cgroup2 mount.
umount /sys/fs/cgroup/unified || exit 1
exec "$@"
EOF
chmod +x "$work/hide-unified"
declare -A mode

runtimes=()
if [ -x "$BERTH" ]; then
  wrapper berth "$BERTH"
  runtimes+=(berth)
else
  echo "NOTE: $BERTH not found: berth-runtime is skipped (cargo build --release -p berth-runtime)"
fi
if [ -n "$CRUN" ] && [ -x "$CRUN" ]; then wrapper crun "$CRUN"; runtimes+=(crun); else echo "NOTE: crun not found: skipped"; fi
if [ -x "$RUNC" ]; then wrapper runc "$RUNC"; runtimes+=(runc); else echo "NOTE: runc not found: skipped"; fi

declare -A median
bench() { # NAME
  local name=$1 pre=()
  if [ "$name" = crun ]; then
    if hugetlb_to_v1; then
      mode[$name]="hugetlb moved to a v1 mount for crun, undone after"
    else
      mode[$name]="hugetlb busy in cgroup2 (subtree_control of /sys/fs/cgroup/unified: $(cat /sys/fs/cgroup/unified/cgroup.subtree_control)): crun ran in a private mount namespace without /sys/fs/cgroup/unified"
      pre=(unshare -m --propagation private "$work/hide-unified")
    fi
  fi
  if ! "${pre[@]}" "$work/run-$name"; then
    echo "ERROR: one '$name run' of the bundle failed; rerun by hand: $work/run-$name (use -k)" >&2
    if [ "$name" = crun ]; then undo_hugetlb; fi
    return 1
  fi
  "${pre[@]}" hyperfine -N -w "$WARMUP" -r "$RUNS" --style basic \
    --export-json "$work/$name.json" -n "$name run /bin/true" "$work/run-$name"
  if [ "$name" = crun ]; then undo_hugetlb; fi
  median[$name]=$(jq '.results[0].median * 1000' "$work/$name.json")
  if [ "$name" != baseline ] && [ -d "$work/state-$name" ]; then
    local left
    left=$(find "$work/state-$name" -mindepth 1 -maxdepth 1 -type d | wc -l)
    [ "$left" = 0 ] || echo "WARNING: $name left $left container(s) in its state directory" >&2
  fi
}

bench baseline
failed=()
for r in "${runtimes[@]}"; do
  bench "$r" || failed+=("$r")
done

echo
echo "== medians ($RUNS runs each, $(nproc) CPUs, $(uname -r), $(date -u +%FT%TZ))"
b=${median[baseline]}
printf '%-10s %9.2f ms   (the sh wrapper exec-ing /bin/true: part of every figure)\n' baseline "$b"
printf '%-10s %12s %16s\n' runtime median "minus wrapper"
for r in "${runtimes[@]}"; do
  [ -n "${median[$r]:-}" ] || { printf '%-10s %12s\n' "$r" failed; continue; }
  printf '%-10s %9.2f ms %13.2f ms\n' "$r" "${median[$r]}" "$(jq -n "${median[$r]} - $b")"
done
if [ -n "${median[berth]:-}" ]; then
  for peer in crun runc; do
    [ -n "${median[$peer]:-}" ] || continue
    printf 'berth / %-5s %6.2fx   (minus wrapper: %.2fx)\n' "$peer" \
      "$(jq -n "${median[berth]} / ${median[$peer]}")" \
      "$(jq -n "(${median[berth]} - $b) / (${median[$peer]} - $b)")"
  done
fi
for r in "${!mode[@]}"; do echo "note: $r: ${mode[$r]}"; done
[ ${#failed[@]} = 0 ] || { echo "failed: ${failed[*]}" >&2; exit 1; }

#!/usr/bin/env bash
# Benchmark (not a test): rootless `run --rm --network none IMAGE true`, berth against podman
# rootless, side by side in one run (issue 16). See bench/README.md.
#
# usage: sudo bench/rootless.sh [-r RUNS] [-w WARMUP] [-k]
#   -r RUNS    hyperfine runs per command (default 30)
#   -w WARMUP  hyperfine warmup runs (default 3)
#   -k         keep the work directory and the user
# env: BERTH (default target/release/berth; berth-runtime and berth-monitor beside it),
#      PODMAN, BUSYBOX (see bench/lib.sh)
#
# As root it makes an ordinary user (useradd, a subordinate id range of 65536 from
# /etc/subuid and /etc/subgid) and runs both engines as that user through setpriv, each with
# its own HOME, XDG_RUNTIME_DIR, XDG_DATA_HOME and XDG_CONFIG_HOME in the work directory:
#   berth   rootless mode (its own user namespace, native overlay with userxattr)
#   podman  rootless 4.3, storage driver overlay (native), cgroupfs, runc (and crun when this
#           host's hugetlb can move to a v1 hierarchy for the run: crun refuses the hybrid
#           layout, see bench/lib.sh), file events
# Both import the same busybox rootfs. Also timed: the setpriv wrapper alone (`true`), which
# both rows include. The user, its id range and everything it made are removed on exit.
# Not yet measured (berth has no rootless network yet): the default network's cost and TCP
# through a published port.
set -euo pipefail
runs=30 warmup=3 keep=0
while getopts r:w:k o; do
  case $o in
  r) runs=$OPTARG ;;
  w) warmup=$OPTARG ;;
  k) keep=1 ;;
  *) sed -n '2,22p' "$0" >&2; exit 2 ;;
  esac
done
. "$(dirname "$0")/lib.sh"
need_root "it makes a user"
need_tools hyperfine setpriv newuidmap useradd
need_berth
need_busybox
[ -n "$PODMAN" ] || die "podman is required (apt-get install podman uidmap)"

make_work berth-rootless
chmod 755 "$work"
user=brb$$
range_start=$((300000 + ($$ % 500) * 65536))
cleanup() {
  local pids
  pids=$(pgrep -u "$user" 2>/dev/null || true)
  [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
  sleep 0.2
  unmount_under "$work"
  [ "$hugetlb_mounted" = 0 ] || undo_hugetlb
  userdel "$user" >/dev/null 2>&1 || true
  sed -i "/^$user:/d" /etc/subuid /etc/subgid
  if [ "$keep" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
useradd -M -d /nonexistent -s /bin/false "$user"
usermod --add-subuids "$range_start-$((range_start + 65535))" \
  --add-subgids "$range_start-$((range_start + 65535))" "$user"
for e in berth podman; do
  mkdir -p "$work/$e/home/config/containers" "$work/$e/xdg"
  chmod 700 "$work/$e/xdg"
done
printf '[storage]\ndriver = "overlay"\n' >"$work/podman/home/config/containers/storage.conf"
printf '[containers]\ndefault_ulimits = ["nofile=20000:20000"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n' \
  >"$work/podman/home/config/containers/containers.conf"
chown -R "$user:" "$work/berth" "$work/podman"
busybox_rootfs "$work/rootfs"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
chmod 644 "$work/busybox.tar"

as() { # as ENGINE CMD...: CMD as the user, with ENGINE's home and runtime directories
  local e=$1
  shift
  echo "setpriv --reuid $user --regid $user --init-groups env HOME=$work/$e/home XDG_RUNTIME_DIR=$work/$e/xdg XDG_DATA_HOME=$work/$e/home/data XDG_CONFIG_HOME=$work/$e/home/config PATH=/usr/bin:/bin BERTH_RUNTIME=$(dirname "$BERTH")/berth-runtime $*"
}
run_as() { eval "$(as "$@")"; }

progress "images"
run_as berth "$BERTH" import "$work/busybox.tar" busybox >>"$log" 2>&1
run_as podman "$PODMAN" import "$work/busybox.tar" busybox >>"$log" 2>&1
cmds=("$(as berth "$BERTH" run --rm --network none busybox true)"
  "$(as podman "$PODMAN" run --rm --network none busybox true)"
  "$(as berth true)")
names=("berth rootless" "podman rootless (runc)" "setpriv wrapper alone")
for i in 0 1; do
  eval "${cmds[$i]}" >>"$log" 2>&1 || die "${names[$i]} failed (see $log with -k)"
done
if hugetlb_to_v1; then
  cmds+=("$(as podman "$PODMAN" --runtime crun run --rm --network none busybox true)")
  names+=("podman rootless (crun)")
  eval "${cmds[3]}" >>"$log" 2>&1 || { unset 'cmds[3]' 'names[3]'; }
fi
progress "hyperfine -N -w $warmup -r $runs"
hyperfine -N -w "$warmup" -r "$runs" "${cmds[@]}" --export-json "$work/h.json" >>"$log" 2>&1 ||
  die "hyperfine failed (see $log with -k)"
echo "berth $("$BERTH" --version | awk '{print $NF}') ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?)), $("$PODMAN" --version), $(date -u '+%Y-%m-%d %H:%M') UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work/h.json" "${names[@]}" <<'PY'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
names = sys.argv[2:]
med = [statistics.median(r["times"]) * 1000 for r in res]
print(f"{'rootless run --rm --network none busybox true':48} {'median':>9}")
for n, m in zip(names, med):
    print(f"{n:48} {m:8.1f} ms")
wrap = med[2]
for i in range(1, len(med)):
    if i == 2:
        continue
    print(f"{names[i]} / berth: {med[i] / med[0]:.1f}x (without the wrapper: {(med[i] - wrap) / (med[0] - wrap):.1f}x; goal >= 5x)")
PY

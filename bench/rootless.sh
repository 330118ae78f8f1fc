#!/usr/bin/env bash
# Benchmark (not a test): rootless `run --rm --network none IMAGE true`, berth against podman
# rootless, side by side in one run (issue 16). See bench/README.md.
#
# usage: sudo bench/rootless.sh [-r RUNS] [-w WARMUP] [-k] [-n]
#   -r RUNS    hyperfine runs per command (default 30)
#   -w WARMUP  hyperfine warmup runs (default 3)
#   -k         keep the work directory and the user
#   -n         no network rows
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
# Then the network (skipped with -n):
#   - the default network's cost: `run --rm busybox true` on the default network (berth: pasta;
#     podman: slirp4netns, and `--network pasta` when this podman has it) against
#     `--network none`, in one hyperfine run;
#   - TCP through a published port (`-p 127.0.0.1:PORT:8080`; berth: pasta's own forwarding;
#     podman: rootlessport, and pasta's with `--network pasta`): a client on the host reads
#     256 MiB that busybox nc in the container sends (the best of 3), against the same nc
#     on the host's loopback. No packet leaves the machine.
set -euo pipefail
runs=30 warmup=3 keep=0 net=1
while getopts r:w:kn o; do
  case $o in
  r) runs=$OPTARG ;;
  w) warmup=$OPTARG ;;
  k) keep=1 ;;
  n) net=0 ;;
  *) sed -n '2,32p' "$0" >&2; exit 2 ;;
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

[ "$net" = 1 ] || exit 0
need_tools pasta slirp4netns python3

# -- the default network's cost
progress "default network: hyperfine -N -w $warmup -r $runs"
ncmds=("$(as berth "$BERTH" run --rm --network none busybox true)"
  "$(as berth "$BERTH" run --rm busybox true)"
  "$(as podman "$PODMAN" run --rm --network none busybox true)"
  "$(as podman "$PODMAN" run --rm busybox true)")
nnames=("berth, --network none" "berth, default network (pasta)"
  "podman, --network none" "podman, default network (slirp4netns)")
for i in "${!ncmds[@]}"; do
  eval "${ncmds[$i]}" >>"$log" 2>&1 || die "${nnames[$i]} failed (see $log with -k)"
done
if eval "$(as podman "$PODMAN" run --rm --network pasta busybox true)" >>"$log" 2>&1; then
  ncmds+=("$(as podman "$PODMAN" run --rm --network pasta busybox true)")
  nnames+=("podman, --network pasta")
fi
hyperfine -N -w "$warmup" -r "$runs" "${ncmds[@]}" --export-json "$work/n.json" >>"$log" 2>&1 ||
  die "hyperfine failed (see $log with -k)"
python3 - "$work/n.json" "${nnames[@]}" <<'PY'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
names = sys.argv[2:]
med = [statistics.median(r["times"]) * 1000 for r in res]
print(f"{'rootless run --rm busybox true':48} {'median':>9} {'network cost':>13}")
for i, (n, m) in enumerate(zip(names, med)):
    base = med[0] if i < 2 else med[2]
    cost = "" if i in (0, 2) else f"{m - base:10.1f} ms"
    print(f"{n:48} {m:8.1f} ms {cost}")
PY

# -- TCP through a published port
# The server: busybox nc sending 256 MiB to each connection, again and again.
serve='while true; do dd if=/dev/zero bs=1M count=256 2>/dev/null | nc -l -p 8080; done'
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
read_mbs() { # read_mbs PORT: MB/s of the best of 3 reads of 256 MiB from 127.0.0.1:PORT
  python3 - "$1" <<'PY'
import socket, sys, time
port, total, best = int(sys.argv[1]), 256 << 20, 0.0
deadline = time.monotonic() + 60
done = 0
while done < 3 and time.monotonic() < deadline:
    try:
        s = socket.create_connection(("127.0.0.1", port))
        t, n = time.monotonic(), 0
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            n += len(b)
        el = time.monotonic() - t
        s.close()
    except OSError:
        n = 0
    if n < total:  # not listening yet (a forwarder accepts, then resets)
        time.sleep(0.1)
        continue
    best = max(best, total / el / 1e6)
    done += 1
print(f"{best:.0f}" if done else "0")
PY
}
progress "published port throughput"
tnames=() tmbs=()
lport=$(free_port)
# (the same busybox nc on the host, as the user, on the host's loopback; the user's
# processes all go at the end)
run_as berth busybox sh -c "'${serve//8080/$lport}'" >/dev/null 2>&1 &
tnames+=("loopback (busybox nc on the host)")
tmbs+=("$(read_mbs "$lport")")
bin_of() { if [ "$1" = berth ]; then echo "$BERTH"; else echo "$PODMAN"; fi; }
publish_row() { # publish_row NAME ENGINE RUN-FLAGS...
  local name=$1 e=$2 port
  shift 2
  port=$(free_port)
  if ! run_as "$e" "$(bin_of "$e")" run -d --name tp "$@" \
    -p "127.0.0.1:$port:8080" busybox sh -c "'$serve'" >>"$log" 2>&1; then
    echo "$name failed (see $log with -k)" >&2
    return 0
  fi
  tnames+=("$name")
  tmbs+=("$(read_mbs "$port")")
  run_as "$e" "$(bin_of "$e")" rm -f tp >>"$log" 2>&1 || true
}
publish_row "berth rootless (pasta)" berth
publish_row "podman rootless (rootlessport)" podman
if [ "${#ncmds[@]}" = 5 ]; then
  publish_row "podman rootless (--network pasta)" podman --network pasta
fi
python3 - "${#tnames[@]}" "${tnames[@]}" "${tmbs[@]}" <<'PY'
import sys
n = int(sys.argv[1])
names, mbs = sys.argv[2:2 + n], [float(x) for x in sys.argv[2 + n:]]
print(f"{'TCP, 256 MiB from the container (best of 3)':48} {'MB/s':>9} {'of loopback':>12}")
for name, v in zip(names, mbs):
    rel = f"{v / mbs[0]:11.2f}" if mbs[0] else ""
    print(f"{name:48} {v:9.0f} {rel}")
print("goal: berth >= 0.6 of loopback (podman's rootlessport ~0.37 here)")
PY

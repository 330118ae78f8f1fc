#!/usr/bin/env bash
# Benchmark (not a test): the container lifecycle of berth vs podman (vs docker when a
# docker engine answers), and vs the bare OCI runtimes, side by side in one run on this
# machine. See bench/README.md.
#
# usage: bench/lifecycle.sh [-r RUNS] [-R ROUNDS] [-w WARMUP] [-n COUNT] [-k]
#   -r RUNS    hyperfine runs per command and round (default 30, at least 20)
#   -R ROUNDS  rounds (default 3): every round times each command once more with hyperfine,
#              so that a burst of load on this shared machine does not land on one tool
#              only; the median is over the samples of all rounds
#   -w WARMUP  hyperfine warmup runs (default 3)
#   -n COUNT   containers started detached in sequence (default 100)
#   -k         keep the work directory
# env:
#   BERTH          berth binary (default target/release/berth of this repository; it finds
#                  berth-runtime and berth-monitor beside it). Build:
#                    cargo build --release -p berth-cli -p berth-runtime
#                    cargo rustc --release -p berth-monitor --bin berth-monitor -- -C target-feature=+crt-static
#   BERTH_RUNTIME  berth-runtime for the bare-runtime row (default: beside BERTH)
#   PODMAN, CRUN, RUNC, DOCKER   peers (default: on PATH; docker only if `docker info` answers)
#   BUSYBOX        static busybox (default /bin/busybox, Debian busybox-static)
#
# What it measures:
#   run --rm       `run --rm --network none IMAGE true` for every engine (berth: a private
#                  network namespace with lo up), hyperfine -N medians
#   bare runtime   `crun run` / `runc run` / `berth-runtime run` of a prepared busybox bundle
#                  running /bin/true (as bench/runtime.sh), same container ID each run (`run`
#                  deletes the container when it exits)
#   run -d xN      COUNT x `run -d IMAGE sleep 1000` one after the other: total and per
#                  container; then `rm -f` of all of them (timed too)
#   monitor memory RSS and PSS (/proc/PID/smaps_rollup) of berth-monitor vs podman's conmon for
#                  one idle `sleep` container alone, and the median over the COUNT containers
# podman runs as in bench/images.sh: a private store under the work directory, CONTAINERS_CONF
# with the ulimits root can set, --network none, --pull=never, --runtime runc,
# --cgroup-manager cgroupfs, --events-backend file. crun 1.8 refuses this host's hybrid cgroup
# layout while cgroup2 holds hugetlb, so for the rows that use crun (bare crun, podman with
# --runtime crun) hugetlb is moved to a v1 mount and moved back right after, as in
# bench/runtime.sh; if it cannot move, those rows are skipped. Every engine's volatile state
# is on a tmpfs, as /run is on a stock Debian. Nothing is pulled; everything is removed on
# exit.
set -euo pipefail

RUNS=30
ROUNDS=3
WARMUP=3
COUNT=100
KEEP=0
while getopts "r:R:w:n:kh" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    R) ROUNDS=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    n) COUNT=$OPTARG ;;
    k) KEEP=1 ;;
    h) sed -n '2,38p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
[ "$RUNS" -ge 20 ] || { echo "lifecycle.sh: -r must be at least 20" >&2; exit 2; }

. "$(dirname "$0")/lib.sh"
BERTH_RUNTIME=${BERTH_RUNTIME:-$(dirname "$BERTH")/berth-runtime}
CRUN=${CRUN:-$(command -v crun || true)}
RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
DOCKER=${DOCKER:-$(command -v docker || true)}

need_tools hyperfine jq
need_root
need_berth
[ -x "$(dirname "$BERTH")/berth-monitor" ] || command -v berth-monitor >/dev/null ||
  die "no berth-monitor beside $BERTH (see the build lines in -h)"
need_busybox
[ -n "$PODMAN" ] || echo "note: podman is not installed: no podman rows" >&2
if [ -n "$DOCKER" ] && ! timeout 5 "$DOCKER" info >/dev/null 2>&1; then
  echo "note: no docker engine answers: no docker rows" >&2
  DOCKER=""
fi

# podman wants its runroot (under here) shorter than 50 characters: a short name
make_work blc
podman_setup
# The volatile state (berth's --runroot, podman's runroot, the bare runtimes' --root) on a
# tmpfs of its own, where a stock Debian 12 keeps it (/run; this VM's /run is on the ext4
# disk): what each engine writes there then costs what it costs on a user's machine.
mkdir -p "$work/run" "$work/p/run"
mount -t tmpfs -o mode=0700 berth-bench-run "$work/run"
mount -t tmpfs -o mode=0700 berth-bench-run "$work/p/run"

# --- the tools, each with its own store under $work
b() { "$BERTH" --root "$work/berth" --runroot "$work/run/berth" "$@"; }
p() { podman_in "$work/p" --runtime "$1" "${@:2}"; }   # p RUNTIME ARGS...
d() { "$DOCKER" "$@"; }

# (crun 1.8 on the hybrid layout: hugetlb_to_v1 and undo_hugetlb, in lib.sh)

# Processes this script started whose command line names the work directory (monitors,
# conmons, containers' sleeps left by a failure): ended by pid.
kill_ours() {
  local pid
  for pid in $(grep -lF "$work" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [ "$pid" = $$ ] || kill -9 "$pid" 2>/dev/null || true
  done
}
cleanup() {
  set +e
  undo_hugetlb
  if [ -d "$work/berth" ]; then
    ids=$(b ps -aq 2>/dev/null)
    [ -z "$ids" ] || b rm -f $ids >/dev/null 2>&1
    b system reset -f >/dev/null 2>&1
  fi
  if [ -n "$PODMAN" ] && [ -d "$work/p" ]; then
    p runc rm -f -t 0 -a >/dev/null 2>&1
    p runc system reset -f >/dev/null 2>&1
  fi
  if [ -n "$DOCKER" ]; then
    for id in $(cat "$work/docker-ids" 2>/dev/null); do d rm -f "$id" >/dev/null 2>&1; done
    d rmi bench-busybox:latest >/dev/null 2>&1
  fi
  for st in "$work"/run/state-*; do
    [ -d "$st" ] || continue
    bin=$(cat "$work/bin-${st##*/state-}" 2>/dev/null)
    for id in $("$bin" --root "$st" list -q 2>/dev/null); do "$bin" --root "$st" delete --force "$id" >/dev/null 2>&1; done
  done
  kill_ours
  unmount_under "$work"
  # berth's flat cgroups of containers that a failure left behind (empty ones only)
  if [ $KEEP = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the busybox rootfs: an image for the engines, a bundle for the bare runtimes
rootfs=$work/bundle/rootfs
busybox_rootfs "$rootfs"
tar -C "$rootfs" -cf "$work/busybox.tar" .
"$RUNC" spec --bundle "$work/bundle"
jq '.process.args = ["/bin/true"] | .process.terminal = false | .root.readonly = false' \
  "$work/bundle/config.json" >"$work/config.json" && mv "$work/config.json" "$work/bundle/config.json"
IMAGE=localhost/bench-busybox:latest
progress "importing busybox into berth${PODMAN:+ and podman}${DOCKER:+ and docker}"
b import "$work/busybox.tar" "$IMAGE" >>"$log"
[ -z "$PODMAN" ] || p runc import "$work/busybox.tar" "$IMAGE" >>"$log"
[ -z "$DOCKER" ] || d import "$work/busybox.tar" bench-busybox:latest >>"$log"
# one run each first: a failure shows here, not as a hyperfine error
b run --rm --network none "$IMAGE" true
[ -z "$PODMAN" ] || p runc run --rm --pull=never --network none "$IMAGE" true

declare -A med     # name -> median ms
declare -A note
declare -A cmd     # name -> command line timed by hyperfine
names=()
crun_names=()
job() { names+=("$1"); cmd[$1]=$2; }
crun_job() { crun_names+=("$1"); cmd[$1]=$2; }
# hf NAME: one round: hyperfine -N of cmd[NAME]; its samples (ms) go to $work/t-NAME
hf() {
  local name=$1
  hyperfine -N -w "$WARMUP" -r "$RUNS" --style basic --export-json "$work/hf.json" -n "$name" "${cmd[$name]}" >>"$log" 2>&1 ||
    { echo "$me: hyperfine failed for $name (see $log with -k)" >&2; tail -5 "$log" >&2; return 1; }
  jq '.results[0].times[] * 1000' "$work/hf.json" >>"$work/t-$name"
  printf '   %-22s %8.2f ms (median of this round)\n' "$name" "$(jq '.results[0].median * 1000' "$work/hf.json")" >&2
}

pflags=$(podman_flags "$work/p")
job berth-run "$BERTH --root $work/berth --runroot $work/run/berth run --rm --network none $IMAGE true"
[ -z "$PODMAN" ] || job podman-run "env CONTAINERS_CONF=$work/containers.conf $PODMAN $pflags --runtime runc run --rm --pull=never --network none $IMAGE true"
[ -z "$DOCKER" ] || job docker-run "$DOCKER run --rm --network none bench-busybox:latest true"
# bare runtimes on the prepared bundle (same ID every run: `run` deletes it on exit)
bare() { # bare NAME BINARY [crun]: checks one run, then registers the job
  mkdir -p "$work/run/state-$1"
  echo "$2" >"$work/bin-$1"
  if ! "$2" --root "$work/run/state-$1" run --bundle "$work/bundle" "bench-$1" >>"$log" 2>&1; then
    note[$1]="$1 run of the bundle failed: skipped (see the log with -k)"
    return 0
  fi
  ${3:-job} "$1-bare" "$2 --root $work/run/state-$1 run --bundle $work/bundle bench-$1"
}
[ ! -x "$BERTH_RUNTIME" ] || bare berth-runtime "$BERTH_RUNTIME"
[ ! -x "$RUNC" ] || bare runc "$RUNC"
if [ -n "$CRUN" ] && hugetlb_to_v1; then
  bare crun "$CRUN" crun_job
  # podman's default runtime is crun: its run --rm too, while hugetlb is on v1
  if [ -n "$PODMAN" ] && p crun run --rm --pull=never --network none "$IMAGE" true >>"$log" 2>&1; then
    crun_job podman-crun-run "env CONTAINERS_CONF=$work/containers.conf $PODMAN $pflags --runtime crun run --rm --pull=never --network none $IMAGE true"
  elif [ -n "$PODMAN" ]; then
    note[podman-crun-run]="podman --runtime crun failed: skipped (see the log with -k)"
  fi
  undo_hugetlb
else
  note[crun]="crun skipped: not installed, or hugetlb could not move off cgroup2"
fi

progress "run --rm and bare runtimes: $ROUNDS rounds of hyperfine -N -w $WARMUP -r $RUNS each"
for round in $(seq "$ROUNDS"); do
  progress "round $round"
  for n in "${names[@]}"; do hf "$n" || true; done
  if [ ${#crun_names[@]} -gt 0 ]; then
    if hugetlb_to_v1; then
      for n in "${crun_names[@]}"; do hf "$n" || true; done
      undo_hugetlb
    else
      note[crun-round]="hugetlb could not move off cgroup2 in some round: fewer crun samples"
    fi
  fi
done
for n in "${names[@]}" "${crun_names[@]}"; do
  [ -s "$work/t-$n" ] && med[$n]=$(median_of <"$work/t-$n")
done

# --- memory of one idle monitor
smaps() { # smaps PID: "RSS_kB PSS_kB"
  awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { print r, p }' "/proc/$1/smaps_rollup"
}
berth_monitor_pid() { cat "$work/run/berth/containers/$1/monitor.pid"; }
progress "idle monitor memory: one sleep container each"
id=$(b run -d --network none "$IMAGE" sleep 1000)
sleep 1
read -r mon_rss mon_pss < <(smaps "$(berth_monitor_pid "$id")")
b rm -f "$id" >>"$log"
if [ -n "$PODMAN" ]; then
  id=$(p runc run -d --pull=never --network none "$IMAGE" sleep 1000)
  sleep 1
  read -r conmon_rss conmon_pss < <(smaps "$(p runc inspect --format '{{.State.ConmonPid}}' "$id")")
  p runc rm -f -t 0 "$id" >>"$log"
fi

# --- COUNT containers started detached in sequence, then removed
detached() { # detached NAME CMD...: starts COUNT containers, ids into $work/NAME-ids
  local name=$1 t0 t1 i
  shift
  : >"$work/$name-ids"
  t0=$(now_ns)
  for i in $(seq "$COUNT"); do
    "$@" >>"$work/$name-ids" 2>>"$log" || { echo "lifecycle.sh: $name: run -d number $i failed" >&2; tail -3 "$log" >&2; exit 1; }
  done
  t1=$(now_ns)
  med[$name-detached]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
  printf '   %-22s %8.1f ms for %d\n' "$name" "${med[$name-detached]}" "$COUNT" >&2
}
timed() { # timed NAME CMD...: wall ms of CMD into med[NAME]
  local name=$1 t0 t1
  shift
  t0=$(now_ns)
  "$@" >>"$log" 2>&1 || echo "lifecycle.sh: $name failed" >&2
  t1=$(now_ns)
  med[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
}
progress "$COUNT x run -d $IMAGE sleep 1000, one after the other"
detached berth b run -d --network none "$IMAGE" sleep 1000
sleep 1
for id in $(cat "$work/berth-ids"); do smaps "$(berth_monitor_pid "$id")"; done >"$work/berth-mem"
many_mon_rss=$(cut -d' ' -f1 "$work/berth-mem" | median_of)
many_mon_pss=$(cut -d' ' -f2 "$work/berth-mem" | median_of)
[ "$(b ps -q | wc -l)" = "$COUNT" ] || echo "WARNING: berth ps shows $(b ps -q | wc -l) running, not $COUNT" >&2
# shellcheck disable=SC2046
timed berth-rm b rm -f $(cat "$work/berth-ids")
if [ -n "$PODMAN" ]; then
  detached podman p runc run -d --pull=never --network none "$IMAGE" sleep 1000
  sleep 1
  for id in $(cat "$work/podman-ids"); do smaps "$(p runc inspect --format '{{.State.ConmonPid}}' "$id")"; done >"$work/podman-mem"
  many_conmon_rss=$(cut -d' ' -f1 "$work/podman-mem" | median_of)
  many_conmon_pss=$(cut -d' ' -f2 "$work/podman-mem" | median_of)
  # shellcheck disable=SC2046
  timed podman-rm p runc rm -f -t 0 $(cat "$work/podman-ids")
fi
if [ -n "$DOCKER" ]; then
  detached docker d run -d --network none bench-busybox:latest sleep 1000
  cp "$work/docker-ids" "$work/docker-ids.all"
  # shellcheck disable=SC2046
  timed docker-rm d rm -f -t 0 $(cat "$work/docker-ids")
fi

# --- summary
mon_bin=$(dirname "$BERTH")/berth-monitor
[ -x "$mon_bin" ] || mon_bin=$(command -v berth-monitor)
mon_kind=$(file -b "$mon_bin" | grep -o 'static-pie linked\|statically linked\|dynamically linked' || echo "?")
echo
echo "berth $("$BERTH" --version 2>/dev/null | awk '{print $NF}') ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?)), ${PODMAN:+$("$PODMAN" --version), }crun $("$CRUN" --version 2>/dev/null | awk 'NR==1 {print $3}'), runc $("$RUNC" --version 2>/dev/null | awk 'NR==1 {print $3}')${DOCKER:+, $("$DOCKER" --version)}"
echo "$(nproc) CPUs, kernel $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), storage on $(findmnt -n -o FSTYPE -T "$work")"
echo "medians of $ROUNDS rounds x hyperfine -N -w $WARMUP -r $RUNS; berth-monitor: $mon_kind"
echo
line() { printf '%-44s %10s\n' "$1" "$2"; }
ms() { [ -n "${med[$1]:-}" ] && printf '%.2f ms' "${med[$1]}" || echo "-"; }
line "berth run --rm --network none IMAGE true" "$(ms berth-run)"
line "podman run --rm --network none (runc)" "$(ms podman-run)"
line "podman run --rm --network none (crun)" "$(ms podman-crun-run)"
[ -z "$DOCKER" ] || line "docker run --rm --network none" "$(ms docker-run)"
line "berth-runtime run BUNDLE (bare)" "$(ms berth-runtime-bare)"
line "crun run BUNDLE (bare)" "$(ms crun-bare)"
line "runc run BUNDLE (bare)" "$(ms runc-bare)"
per() { [ -n "${med[$1-detached]:-}" ] && awk -v t="${med[$1-detached]}" -v n="$COUNT" 'BEGIN { printf "%.0f ms (%.1f ms each)", t, t / n }' || echo "-"; }
line "berth $COUNT x run -d, sequential" "$(per berth)"
[ -z "$PODMAN" ] || line "podman $COUNT x run -d, sequential" "$(per podman)"
[ -z "$DOCKER" ] || line "docker $COUNT x run -d, sequential" "$(per docker)"
line "berth rm -f of the $COUNT" "$(ms berth-rm)"
[ -z "$PODMAN" ] || line "podman rm -f -t 0 of the $COUNT" "$(ms podman-rm)"
kb() { awk -v k="$1" 'BEGIN { printf "%.2f MiB", k / 1024 }'; }
line "berth-monitor, one idle container: RSS / PSS" "$(kb "$mon_rss") / $(kb "$mon_pss")"
line "berth-monitor, median of $COUNT: RSS / PSS" "$(kb "$many_mon_rss") / $(kb "$many_mon_pss")"
if [ -n "$PODMAN" ]; then
  line "conmon, one idle container: RSS / PSS" "$(kb "$conmon_rss") / $(kb "$conmon_pss")"
  line "conmon, median of $COUNT: RSS / PSS" "$(kb "$many_conmon_rss") / $(kb "$many_conmon_pss")"
fi
echo
ratio() { # ratio LABEL A B TARGET: A/B
  [ -n "${med[$2]:-}" ] && [ -n "${med[$3]:-}" ] || return 0
  awk -v l="$1" -v a="${med[$2]}" -v b="${med[$3]}" -v t="$4" 'BEGIN { printf "%-44s %7.3f   (inverse %5.1fx)   %s\n", l, a / b, b / a, t }'
}
echo "ratios of medians (A / B; below 1: A is faster):"
ratio "run --rm: berth / podman (runc)" berth-run podman-run "target <= 0.1 (berth >= 10x faster)"
ratio "run --rm: berth / podman (crun)" berth-run podman-crun-run "target <= 0.1"
ratio "run --rm: berth / docker" berth-run docker-run ""
ratio "berth run --rm / bare crun run" berth-run crun-bare "target <= 2"
ratio "berth run --rm / bare berth-runtime run" berth-run berth-runtime-bare ""
ratio "bare berth-runtime / bare crun" berth-runtime-bare crun-bare ""
ratio "run -d x$COUNT: berth / podman" berth-detached podman-detached ""
awk -v r="$mon_rss" 'BEGIN { printf "%-44s %7.2f MiB        target < 1 MiB (%s)\n", "berth-monitor idle RSS", r / 1024, r < 1024 ? "met" : "not met" }'
[ -z "$PODMAN" ] || awk -v r="$mon_rss" -v c="$conmon_rss" -v p="$mon_pss" -v q="$conmon_pss" 'BEGIN { printf "%-44s %7.2f RSS, %.2f PSS\n", "berth-monitor / conmon", r / c, p / q }'
for k in "${!note[@]}"; do echo "note: ${note[$k]}"; done

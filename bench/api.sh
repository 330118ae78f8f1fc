#!/usr/bin/env bash
# Benchmark (not a test): the Docker Engine API of berth (`berth system service`) vs Debian's
# dockerd 20.10 on the same machine, both driven by the same docker CLI. See bench/README.md.
#
# usage: bench/api.sh [-r RUNS] [-w WARMUP] [-P PARALLEL] [-k]
#   -r RUNS      hyperfine runs per command (default 30, at least 10)
#   -w WARMUP    hyperfine warmup runs (default 3)
#   -P PARALLEL  concurrent `docker ps` in the parallel row (default 100)
#   -k           keep the work directory
# env:
#   BERTH    berth binary (default target/release/berth of this repository; berth-api,
#            berth-runtime, berth-monitor and berth-dns beside it). Build:
#              cargo build --release -p berth-cli -p berth-api -p berth-monitor -p berth-runtime -p berth-dns
#   DOCKER   the docker CLI both servers are driven with (default /usr/local/bin/docker, CLI 28;
#            else the first docker on PATH)
#   DOCKERD, CONTAINERD   Debian's docker.io daemons (default /usr/sbin/dockerd,
#            /usr/bin/containerd); without them the dockerd rows are skipped
#   BUSYBOX  static busybox (default /bin/busybox, Debian busybox-static)
#
# What it measures (hyperfine -N medians, ms):
#   run --rm       `docker run --rm --network none busybox true` through each socket
#   ps             `docker ps` round trip (no containers)
#   ps xN          N `docker ps` started at once, wall time until the last ends (hyperfine
#                  of a shell that starts them with `&` and waits)
#   idle RSS       the berth service's RSS (/proc/PID/status VmRSS) idle after the runs, vs
#                  dockerd + containerd idle after theirs
# The dockerd oracle runs as /work/notes/dockerd-up.sh starts it: its own containerd (config,
# root, state, grpc socket, CRI off) and dockerd (data root, exec root, pidfile, socket,
# --bridge=none --iptables=false) inside a network namespace made here (lo only) and a private
# mount namespace, everything under the work directory; stopped and removed on exit. berth's
# service runs on a private --root with `--time 0` on a socket in the work directory.
set -euo pipefail

RUNS=30
WARMUP=3
PAR=100
KEEP=0
while getopts "r:w:P:kh" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    P) PAR=$OPTARG ;;
    k) KEEP=1 ;;
    h) sed -n '2,31p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
[ "$RUNS" -ge 10 ] || { echo "api.sh: -r must be at least 10" >&2; exit 2; }

. "$(dirname "$0")/lib.sh"
if [ -z "${DOCKER:-}" ]; then
  if [ -x /usr/local/bin/docker ]; then DOCKER=/usr/local/bin/docker; else DOCKER=$(command -v docker || true); fi
fi
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
CONTAINERD=${CONTAINERD:-/usr/bin/containerd}

need_tools hyperfine jq ip unshare nsenter
need_root
need_berth
[ -x "$(dirname "$BERTH")/berth-api" ] || die "no berth-api beside $BERTH (see the build line in -h)"
need_busybox
[ -n "$DOCKER" ] || die "no docker CLI (set DOCKER)"
WITH_DOCKERD=1
if [ ! -x "$DOCKERD" ] || [ ! -x "$CONTAINERD" ]; then
  echo "note: no $DOCKERD / $CONTAINERD (apt-get install docker.io): no dockerd rows" >&2
  WITH_DOCKERD=0
fi

# unix socket paths hold 107 bytes: a short work directory
work=$(mktemp -d /tmp/bapi.XXXXXX)
log=$work/log
: >"$log"
ns=bapi$$
bsock=$work/b.sock
dsock=$work/d.sock
svc_pid=""

b() { "$BERTH" --root "$work/berth" "$@"; }
db() { "$DOCKER" -H "unix://$bsock" "$@"; }
dd() { "$DOCKER" -H "unix://$dsock" "$@"; }
export DOCKER_CONFIG=$work/docker-config
unset DOCKER_HOST DOCKER_CONTEXT

pidof_file() { cat "$1" 2>/dev/null || true; }
stop_pid() { # stop_pid PID: SIGTERM, then SIGKILL after 20 s
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 200); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  set +e
  if [ -n "$svc_pid" ]; then
    ids=$(b ps -aq 2>/dev/null)
    [ -z "$ids" ] || b rm -f $ids >/dev/null 2>&1
    stop_pid "$svc_pid"
  fi
  [ -d "$work/berth" ] && b system reset -f >/dev/null 2>&1
  if [ $WITH_DOCKERD = 1 ]; then
    if [ -S "$dsock" ]; then
      ids=$(dd ps -aq 2>/dev/null)
      [ -z "$ids" ] || dd rm -f $ids >/dev/null 2>&1
    fi
    stop_pid "$(pidof_file "$work/d.pid")"
    # containerd's shims: their working directory is under $work
    for p in /proc/[0-9]*; do
      case "$(readlink "$p/cwd" 2>/dev/null)" in "$work"/*) kill -9 "${p#/proc/}" 2>/dev/null ;; esac
    done
    stop_pid "$(pidof_file "$work/ctd.pid")"
    ip netns del "$ns" 2>/dev/null
  fi
  unmount_under "$work"
  if [ $KEEP = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the busybox image, for both
progress "busybox image"
busybox_rootfs "$work/rootfs"
tar -C "$work/rootfs" -cf "$work/bb.tar" .
b import "$work/bb.tar" busybox:latest >>"$log"
b save busybox -o "$work/bb-save.tar" >>"$log"

# --- berth's service
progress "berth system service"
"$BERTH" --root "$work/berth" system service --time 0 "unix://$bsock" >>"$work/service.log" 2>&1 &
svc_pid=$!
for _ in $(seq 300); do db version >/dev/null 2>&1 && break; sleep 0.1; done
db version --format 'berth API {{.Server.APIVersion}}' >&2 || die "berth's service did not come up ($work/service.log)"

# --- dockerd 20.10
if [ $WITH_DOCKERD = 1 ]; then
  progress "dockerd in netns $ns"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  cat >"$work/ctd.toml" <<T
version = 2
root = "$work/ctd-root"
state = "$work/ctd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/ctd.sock"
T
  echo '{}' >"$work/d.json"
  unshare --mount --propagation slave nsenter --net="/run/netns/$ns" -- sh -c "
    $CONTAINERD --config $work/ctd.toml >$work/ctd.log 2>&1 & echo \$! > $work/ctd.pid
    for i in \$(seq 100); do [ -S $work/ctd.sock ] && break; sleep 0.1; done
    $DOCKERD --config-file $work/d.json --data-root $work/data --exec-root $work/exec \
      --pidfile $work/d.pid -H unix://$dsock --containerd $work/ctd.sock --bridge=none \
      --iptables=false --default-ulimit nofile=20000:20000 >$work/d.log 2>&1 &" </dev/null >/dev/null 2>&1
  for _ in $(seq 600); do dd version >/dev/null 2>&1 && break; sleep 0.1; done
  dd version --format 'dockerd {{.Server.Version}}' >&2 || die "dockerd did not come up ($work/d.log)"
  dd load -i "$work/bb-save.tar" >>"$log"
fi

# --- timings
declare -A med
hf() { # hf NAME CMD: hyperfine -N (or through a shell when CMD has one) into med[NAME]
  local name=$1 cmdline=$2 shell=${3:-}
  local opts=(-w "$WARMUP" -r "$RUNS" --style basic --export-json "$work/hf.json" -n "$name")
  if [ -n "$shell" ]; then opts+=(-S bash); else opts+=(-N); fi
  hyperfine "${opts[@]}" "$cmdline" >>"$log" 2>&1 ||
    { echo "api.sh: hyperfine failed for $name (see $log with -k)" >&2; tail -5 "$log" >&2; return 1; }
  med[$name]=$(jq '.results[0].median * 1000' "$work/hf.json" | awk '{ printf "%.1f", $1 }')
  printf '   %-22s %8s ms (median)\n' "$name" "${med[$name]}" >&2
}
par_cmd() { # the command line of PAR parallel `docker ps` against SOCK
  echo "for i in \$(seq $PAR); do $DOCKER -H unix://$1 ps >/dev/null & done; wait"
}

servers=(berth)
[ $WITH_DOCKERD = 1 ] && servers+=(dockerd)
for s in "${servers[@]}"; do
  sock=$bsock
  [ "$s" = dockerd ] && sock=$dsock
  progress "$s: run --rm, ps, $PAR x ps"
  "$DOCKER" -H "unix://$sock" run --rm --network none busybox true >>"$log" 2>&1 || die "$s: run --rm failed (see $log with -k)"
  hf "$s-run" "$DOCKER -H unix://$sock run --rm --network none busybox true"
  hf "$s-ps" "$DOCKER -H unix://$sock ps"
  hf "$s-ps-par" "$(par_cmd "$sock")" shell
done

# --- idle memory
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
progress "idle memory"
sleep 2
# the service is berth-api (berth execs it: same PID)
med[berth-rss]=$(rss_kb "$svc_pid")
if [ $WITH_DOCKERD = 1 ]; then
  med[dockerd-rss]=$(rss_kb "$(pidof_file "$work/d.pid")")
  med[containerd-rss]=$(rss_kb "$(pidof_file "$work/ctd.pid")")
fi

# --- report
ratio() { # ratio A B: A/B with one decimal, or "-"
  [ -n "${1:-}" ] && [ -n "${2:-}" ] || { echo "-"; return; }
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }'
}
mib() { awk -v k="${1:-0}" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo
echo "Docker Engine API, $(date -u '+%Y-%m-%d %H:%M UTC'), docker CLI $("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null), $RUNS runs (hyperfine -N medians)"
printf '%-36s %12s %12s %10s\n' "" "berth" "dockerd" "dockerd/berth"
for row in run ps ps-par; do
  case $row in
    run) label="run --rm --network none busybox true" ;;
    ps) label="docker ps" ;;
    ps-par) label="$PAR x docker ps in parallel" ;;
  esac
  printf '%-36s %9s ms %9s ms %10s\n' "$label" "${med[berth-$row]:--}" "${med[dockerd-$row]:--}" \
    "$(ratio "${med[dockerd-$row]:-}" "${med[berth-$row]:-}")"
done
if [ $WITH_DOCKERD = 1 ]; then
  both=$(( ${med[dockerd-rss]:-0} + ${med[containerd-rss]:-0} ))
  printf '%-36s %8s MiB %8s MiB %10s   (dockerd %s + containerd %s MiB)\n' "idle RSS" \
    "$(mib "${med[berth-rss]}")" "$(mib "$both")" "$(ratio "$both" "${med[berth-rss]}")" \
    "$(mib "${med[dockerd-rss]}")" "$(mib "${med[containerd-rss]}")"
else
  printf '%-36s %8s MiB\n' "idle RSS" "$(mib "${med[berth-rss]}")"
fi

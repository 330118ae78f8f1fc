#!/usr/bin/env bash
# Benchmark (not a test): container networking of berth vs podman, side by side in one run.
# See bench/README.md.
#
# usage: bench/network.sh [-t SECONDS] [-n RUNS] [-r SETUP_RUNS] [-k]
#   -t SECONDS     length of each iperf3 measurement (default 5)
#   -n RUNS        iperf3 measurements per path; the median is reported (default 3)
#   -r SETUP_RUNS  hyperfine runs for the setup-cost rows (default 30)
#   -k             keep the work directory
# env: BERTH (default target/release/berth), PODMAN (default on PATH), BUSYBOX
#
# What it measures (iperf3 TCP, one stream, from Debian's iperf3):
#   loopback         host → host over 127.0.0.1: the reference of every ratio
#   bridge           container → container over the engine's default bridge, over a user
#                    network, and over one made with Docker's 1500-byte links asked for
#                    (berth's links are 65520 unless asked: only the default route is 1500);
#                    podman's default bridge, and podman's network with MTU 65520
#   published        host → container through a published port on 127.0.0.1 (DNAT for berth;
#                    podman's CNI portmap plugin)
#   setup cost       `run --rm IMAGE true` on the default bridge minus the same with
#                    --network none (hyperfine medians): what networking adds to a run
# iperf3 is a host binary: it runs inside each container's network namespace through
# `nsenter --net=SandboxKey`, so the path measured is exactly the container's (veth, bridge,
# NAT); busybox images have no iperf3. All traffic stays on this machine: loopback and the
# engines' own bridges.
set -euo pipefail

T=5
N=3
SETUP_RUNS=30
KEEP=0
while getopts "t:n:r:kh" opt; do
  case $opt in
    t) T=$OPTARG ;;
    n) N=$OPTARG ;;
    r) SETUP_RUNS=$OPTARG ;;
    k) KEEP=1 ;;
    h) sed -n '2,25p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done

. "$(dirname "$0")/lib.sh"
need_tools iperf3 jq nsenter hyperfine
need_root
need_berth
need_busybox
[ -n "$PODMAN" ] || echo "note: podman is not installed: no podman rows" >&2

make_work bnet
podman_setup
b() { "$BERTH" --root "$work/berth" "$@"; }
p() { podman_in "$work/p" --runtime runc "$@"; }

cleanup() {
  set +e
  pkill -f "iperf3 -s -p 52" 2>/dev/null
  b rm -f $(b ps -aq 2>/dev/null) >>"$log" 2>&1
  b system reset -f >>"$log" 2>&1
  if [ -n "$PODMAN" ]; then
    p rm -af -t 0 >>"$log" 2>&1
    p system reset -f >>"$log" 2>&1
  fi
  unmount_under "$work"
  if [ $KEEP = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

progress "busybox image"
busybox_rootfs "$work/rootfs"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
IMAGE=localhost/bench-busybox:latest
b import "$work/busybox.tar" "$IMAGE" >>"$log"
[ -z "$PODMAN" ] || p import "$work/busybox.tar" "$IMAGE" >>"$log" 2>&1

# iperf NS_SERVER NS_CLIENT ADDR PORT [SERVER_PORT]: Gbit/s, median of N runs. An empty
# namespace is the host's.
iperf() {
  local ns_s=$1 ns_c=$2 addr=$3 port=$4 sport=${5:-$4} i out
  for i in $(seq "$N"); do
    # -1: one test, then exit
    if [ -n "$ns_s" ]; then nsenter --net="$ns_s" iperf3 -s -p "$sport" -1 >>"$log" 2>&1 &
    else iperf3 -s -p "$sport" -1 >>"$log" 2>&1 & fi
    sleep 0.3
    if [ -n "$ns_c" ]; then out=$(nsenter --net="$ns_c" iperf3 -c "$addr" -p "$port" -t "$T" -J)
    else out=$(iperf3 -c "$addr" -p "$port" -t "$T" -J); fi
    wait
    echo "$out" | jq '.end.sum_received.bits_per_second / 1e9'
  done | median_of
}

declare -A gbps
progress "loopback"
gbps[loopback]=$(iperf "" "" 127.0.0.1 5201)

sandbox() { jq -r '.[0].NetworkSettings.SandboxKey'; }
ipaddr() { jq -r '.[0].NetworkSettings.Networks | to_entries[0].value.IPAddress'; }

progress "berth: bridge and published port"
b run -d --name srv "$IMAGE" sleep 1000 >>"$log"
b run -d --name cli "$IMAGE" sleep 1000 >>"$log"
b run -d --name pub -p 127.0.0.1:15202:5202 "$IMAGE" sleep 1000 >>"$log"
ns_s=$(b inspect srv | sandbox); ns_c=$(b inspect cli | sandbox); ip_s=$(b inspect srv | ipaddr)
ns_p=$(b inspect pub | sandbox)
gbps[berth-bridge]=$(iperf "$ns_s" "$ns_c" "$ip_s" 5201)
gbps[berth-published]=$(iperf "$ns_p" "" 127.0.0.1 15202 5202)
b rm -f srv cli pub >>"$log"
# The same pair on a user network, once as made by default and once with Docker's 1500-byte
# links asked for (-o com.docker.network.driver.mtu=1500: no local-MTU links).
pair_on() { # pair_on NETWORK KEY
  b run -d --name srv --network "$1" "$IMAGE" sleep 1000 >>"$log"
  b run -d --name cli --network "$1" "$IMAGE" sleep 1000 >>"$log"
  ns_s=$(b inspect srv | sandbox); ns_c=$(b inspect cli | sandbox); ip_s=$(b inspect srv | ipaddr)
  gbps[$2]=$(iperf "$ns_s" "$ns_c" "$ip_s" 5201)
  b rm -f srv cli >>"$log"
}
b network create usernet >>"$log"
pair_on usernet berth-usernet
b network create -o com.docker.network.driver.mtu=1500 mtu1500 >>"$log"
pair_on mtu1500 berth-mtu1500
b network rm usernet mtu1500 >>"$log"

if [ -n "$PODMAN" ]; then
  progress "podman: bridge and published port"
  p run -d --name srv --pull=never "$IMAGE" sleep 1000 >>"$log" 2>&1
  p run -d --name cli --pull=never "$IMAGE" sleep 1000 >>"$log" 2>&1
  p run -d --name pub --pull=never -p 127.0.0.1:15203:5203 "$IMAGE" sleep 1000 >>"$log" 2>&1
  ns_s=$(p inspect srv | sandbox); ns_c=$(p inspect cli | sandbox); ip_s=$(p inspect srv | ipaddr)
  ns_p=$(p inspect pub | sandbox)
  gbps[podman-bridge]=$(iperf "$ns_s" "$ns_c" "$ip_s" 5201)
  gbps[podman-published]=$(iperf "$ns_p" "" 127.0.0.1 15203 5203)
  p rm -f -t 0 srv cli pub >>"$log" 2>&1
  p network create --opt mtu=65520 jumbo >>"$log" 2>&1
  p run -d --name srv --network jumbo --pull=never "$IMAGE" sleep 1000 >>"$log" 2>&1
  p run -d --name cli --network jumbo --pull=never "$IMAGE" sleep 1000 >>"$log" 2>&1
  ns_s=$(p inspect srv | sandbox); ns_c=$(p inspect cli | sandbox); ip_s=$(p inspect srv | ipaddr)
  gbps[podman-jumbo]=$(iperf "$ns_s" "$ns_c" "$ip_s" 5201)
  p rm -f -t 0 srv cli >>"$log" 2>&1
  p network rm jumbo >>"$log" 2>&1
fi

progress "setup cost: run --rm on the bridge vs --network none (hyperfine -N -r $SETUP_RUNS)"
declare -A ms
hf() { # hf NAME CMD
  hyperfine -N -w 3 -r "$SETUP_RUNS" --export-json "$work/$1.json" "$2" >>"$log" 2>&1
  ms[$1]=$(jq '.results[0].median * 1000' "$work/$1.json")
}
hf berth-none "$BERTH --root $work/berth run --rm --network none $IMAGE true"
hf berth-bridge "$BERTH --root $work/berth run --rm $IMAGE true"
if [ -n "$PODMAN" ]; then
  pflags="$(podman_flags "$work/p") --runtime runc"
  hf podman-none "env CONTAINERS_CONF=$work/containers.conf $PODMAN $pflags run --rm --pull=never --network none $IMAGE true"
  hf podman-bridge "env CONTAINERS_CONF=$work/containers.conf $PODMAN $pflags run --rm --pull=never $IMAGE true"
fi

echo
echo "berth $("$BERTH" --version 2>/dev/null | awk '{print $NF}') ($(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?))${PODMAN:+, $("$PODMAN" --version) (CNI)}, iperf3 $(iperf3 --version | awk 'NR==1 {print $2}'), $(date -u +%Y-%m-%d), $(nproc) CPUs, kernel $(uname -r)"
printf '%-44s %14s %10s\n' "TCP throughput (iperf3, ${T}s, median of $N)" "Gbit/s" "x loopback"
row() { printf '%-44s %14.2f %10.2f\n' "$1" "$2" "$(awk -v a="$2" -v b="${gbps[loopback]}" 'BEGIN { print a / b }')"; }
row "host loopback 127.0.0.1" "${gbps[loopback]}"
row "berth container -> container (bridge)" "${gbps[berth-bridge]}"
[ -z "$PODMAN" ] || row "podman container -> container (bridge)" "${gbps[podman-bridge]}"
row "berth the same, user network" "${gbps[berth-usernet]}"
row "berth the same, network with MTU 1500 asked" "${gbps[berth-mtu1500]}"
[ -z "$PODMAN" ] || row "podman the same, network with MTU 65520" "${gbps[podman-jumbo]}"
row "berth host -> published port 127.0.0.1" "${gbps[berth-published]}"
[ -z "$PODMAN" ] || row "podman host -> published port 127.0.0.1" "${gbps[podman-published]}"
echo
printf '%-44s %10s %10s %10s\n' "run --rm IMAGE true (hyperfine median)" "none" "bridge" "+network"
setup() { printf '%-44s %8.1f ms %7.1f ms %7.1f ms\n' "$1" "${ms[$2-none]}" "${ms[$2-bridge]}" "$(awk -v a="${ms[$2-bridge]}" -v b="${ms[$2-none]}" 'BEGIN { print a - b }')"; }
setup "berth" berth
[ -z "$PODMAN" ] || setup "podman (runc, CNI)" podman

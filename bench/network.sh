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
#                    --network none (hyperfine medians): what networking adds to a run;
#                    the same on a macvlan and an ipvlan network
#   LAN              container -> "another host of the LAN" (a namespace at the far end of a
#                    veth pair whose host end is the parent): over macvlan and ipvlan (l2),
#                    over the default bridge + NAT (the host routes to the LAN through the
#                    parent's address), against the floor: two bare namespaces joined by a
#                    veth pair. Ratios are to the floor. ipvlan rows need a kernel with ipvlan.
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

LAN=bnl$$            # the parent, in the host's namespace (its peer: ${LAN}p)
LANNS=bnlan$$        # the LAN host
FLOOR=bnfl$$         # the floor: a namespace joined to the LAN host by a bare veth
cleanup() {
  set +e
  # (only this script's own iperf3 servers, by their ids)
  jobs -p | xargs -r kill 2>/dev/null
  b rm -f $(b ps -aq 2>/dev/null) >>"$log" 2>&1
  b system reset -f >>"$log" 2>&1
  ip link del "$LAN" 2>/dev/null
  ip netns del "$LANNS" 2>/dev/null
  ip netns del "$FLOOR" 2>/dev/null
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

progress "berth: macvlan, ipvlan and bridge+NAT to a LAN host, and the bare veth floor"
# The LAN: 10.250.77.1 (LAN host) <-veth-> parent (host: 10.250.77.254, for the NAT path).
ip netns add "$LANNS"; ip netns add "$FLOOR"
ip link add "$LAN" type veth peer name "${LAN}p"
ip link set "${LAN}p" netns "$LANNS"
ip -n "$LANNS" addr add 10.250.77.1/24 dev "${LAN}p"
ip -n "$LANNS" link set "${LAN}p" up; ip -n "$LANNS" link set lo up
ip addr add 10.250.77.254/24 dev "$LAN"; ip link set "$LAN" up
# The floor: another veth pair straight into the LAN host.
ip link add "${FLOOR}a" netns "$FLOOR" type veth peer name "${FLOOR}b" netns "$LANNS"
ip -n "$FLOOR" addr add 10.250.78.2/24 dev "${FLOOR}a"; ip -n "$FLOOR" link set "${FLOOR}a" up
ip -n "$LANNS" addr add 10.250.78.1/24 dev "${FLOOR}b"; ip -n "$LANNS" link set "${FLOOR}b" up
ip -n "$FLOOR" link set lo up
gbps[floor]=$(iperf /run/netns/"$LANNS" /run/netns/"$FLOOR" 10.250.78.1 5201)
lan_client() { # lan_client KEY [run flags...]: a container's throughput to the LAN host
  local key=$1; shift
  b run -d --name lanc "$@" "$IMAGE" sleep 1000 >>"$log"
  gbps[$key]=$(iperf /run/netns/"$LANNS" "$(b inspect lanc | sandbox)" 10.250.77.1 5201)
  b rm -f lanc >>"$log"
}
lan_client berth-nat
lan_opts=(--subnet 10.250.77.0/24 --gateway 10.250.77.1 --aux-address host=10.250.77.254)
b network create -d macvlan -o parent="$LAN" "${lan_opts[@]}" mvnet >>"$log"
lan_client berth-macvlan --network mvnet
b network rm mvnet >>"$log"
HAVE_IPVLAN=0
if b network create -d ipvlan -o parent="$LAN" "${lan_opts[@]}" ivnet >>"$log" 2>&1 &&
   b run --rm --network ivnet "$IMAGE" true >>"$log" 2>&1; then
  HAVE_IPVLAN=1
  lan_client berth-ipvlan --network ivnet
else
  echo "note: no ipvlan rows (this kernel has no ipvlan links)" >&2
fi
b network rm ivnet >>"$log" 2>&1 || true

progress "setup cost: run --rm on the bridge vs --network none (hyperfine -N -r $SETUP_RUNS)"
declare -A ms
hf() { # hf NAME CMD
  hyperfine -N -w 3 -r "$SETUP_RUNS" --export-json "$work/$1.json" "$2" >>"$log" 2>&1
  ms[$1]=$(jq '.results[0].median * 1000' "$work/$1.json")
}
hf berth-none "$BERTH --root $work/berth run --rm --network none $IMAGE true"
hf berth-bridge "$BERTH --root $work/berth run --rm $IMAGE true"
b network create -d macvlan -o parent="$LAN" "${lan_opts[@]}" mvnet >>"$log"
hf berth-macvlan "$BERTH --root $work/berth run --rm --network mvnet $IMAGE true"
b network rm mvnet >>"$log"
if [ $HAVE_IPVLAN = 1 ]; then
  b network create -d ipvlan -o parent="$LAN" "${lan_opts[@]}" ivnet >>"$log"
  hf berth-ipvlan "$BERTH --root $work/berth run --rm --network ivnet $IMAGE true"
  b network rm ivnet >>"$log"
fi
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
drv() { printf '%-44s %8.1f ms %7.1f ms %7.1f ms\n' "$1" "${ms[berth-none]}" "${ms[$2]}" "$(awk -v a="${ms[$2]}" -v b="${ms[berth-none]}" 'BEGIN { print a - b }')"; }
drv "berth, macvlan network" berth-macvlan
[ $HAVE_IPVLAN = 0 ] || drv "berth, ipvlan network" berth-ipvlan
echo
printf '%-44s %14s %10s\n' "TCP to a LAN host (iperf3, ${T}s, median of $N)" "Gbit/s" "x floor"
lrow() { printf '%-44s %14.2f %10.2f\n' "$1" "$2" "$(awk -v a="$2" -v b="${gbps[floor]}" 'BEGIN { print a / b }')"; }
lrow "floor: two namespaces, a bare veth pair" "${gbps[floor]}"
lrow "berth container, macvlan (bridge mode)" "${gbps[berth-macvlan]}"
[ $HAVE_IPVLAN = 0 ] || lrow "berth container, ipvlan (l2)" "${gbps[berth-ipvlan]}"
lrow "berth container, default bridge + NAT" "${gbps[berth-nat]}"

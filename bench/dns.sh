#!/usr/bin/env bash
# Benchmark (not a test): berth-dns vs dnsmasq serving the same container names, side by
# side in one run on this machine. Loopback only: nothing leaves the machine. See
# bench/README.md.
#
# usage: bench/dns.sh [-r RUNS] [-l SECONDS] [-n HOSTS] [-k]
#   -r RUNS     dnsperf runs per server and mode (default 5, at least 3); medians are printed
#   -l SECONDS  length of one dnsperf run (default 5)
#   -n HOSTS    containers in the records (default 100, each with a name and an alias)
#   -k          keep the work directory
# env:
#   BERTH_DNS   berth-dns binary (default target/release/berth-dns of this repository;
#               cargo build --release -p berth-dns)
#   DNSMASQ     dnsmasq binary (default: dnsmasq on PATH, Debian dnsmasq-base; without it
#               berth-dns's figures only)
#
# What it measures (dnsperf, 1 client, up to 100 queries in flight):
#   memory    VmRSS of each server after start (and again after all the load), of which
#             RssAnon is its own (the rest is mostly the shared libc), and PSS
#   local     queries/s and mean latency for A queries of local names (the container
#             names and aliases, in random order): berth-dns from its records file,
#             dnsmasq from an --addn-hosts file with the same names (--no-resolv)
#   forward   queries/s for names neither knows, forwarded by both to a third server on
#             loopback (a dnsmasq answering them from its own hosts file); the peer runs
#             with --cache-size=0 since berth-dns caches nothing; that upstream asked
#             directly is the baseline
set -euo pipefail

RUNS=5
SECS=5
HOSTS=100
KEEP=0
while getopts "r:l:n:kh" opt; do
  case $opt in
    r) RUNS=$OPTARG ;;
    l) SECS=$OPTARG ;;
    n) HOSTS=$OPTARG ;;
    k) KEEP=1 ;;
    h) sed -n '2,26p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
[ "$RUNS" -ge 3 ] || { echo "dns.sh: -r must be at least 3" >&2; exit 2; }
[ "$HOSTS" -ge 1 ] && [ "$HOSTS" -le 250 ] || { echo "dns.sh: -n must be 1..250" >&2; exit 2; }

. "$(dirname "$0")/lib.sh"
BERTH_DNS=${BERTH_DNS:-$repo/target/release/berth-dns}
DNSMASQ=${DNSMASQ:-$(command -v dnsmasq || true)}

need_root "port 53"
[ -x "$BERTH_DNS" ] || die "no berth-dns at $BERTH_DNS (cargo build --release -p berth-dns)"
need_tools dnsperf
[ -n "$DNSMASQ" ] || echo "note: dnsmasq is not installed: berth-dns's figures only" >&2

make_work berth-bench-dns
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; done
  if [ "$KEEP" = 1 ]; then echo "work directory: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Addresses: 127.53.N.x, N from our pid so that two runs do not collide.
n=$(( $$ % 200 + 20 ))
BERTH_IP=127.53.$n.1      # berth-dns's listener (the "gateway")
PEER_IP=127.53.$n.2       # dnsmasq with the same names
UP_IP=127.53.$n.3         # the upstream for forwarded names
net=127.54.$n             # container addresses

# The records, dnsmasq's hosts file, and the upstream's hosts file.
{
  echo "listen bench $BERTH_IP"
  for i in $(seq 1 "$HOSTS"); do echo "host bench $net.$i web$i alias$i"; done
} >"$work/records"
for i in $(seq 1 "$HOSTS"); do echo "$net.$i web$i alias$i"; done >"$work/hosts"
for i in $(seq 1 "$HOSTS"); do echo "192.0.2.$i far$i.example"; done >"$work/up-hosts"
echo "nameserver $UP_IP" >"$work/resolv.conf"
for i in $(seq 1 "$HOSTS"); do echo "web$i A"; echo "alias$i A"; done | shuf >"$work/local.txt"
for i in $(seq 1 "$HOSTS"); do echo "far$i.example A"; done | shuf >"$work/far.txt"

wait_port() { # wait_port IP: until something answers on IP:53
  for _ in $(seq 100); do
    dig +short +tries=1 +time=1 "@$1" web1 >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "dns.sh: nothing answers on $1:53" >&2; exit 1
}

dnsmasq_at() { # dnsmasq_at IP HOSTS_FILE [ARG...]: a dnsmasq answering from that file
  local ip=$1 hosts=$2
  shift 2
  "$DNSMASQ" --keep-in-foreground --no-resolv --no-hosts --addn-hosts="$hosts" \
    --listen-address="$ip" --bind-interfaces --port=53 \
    --pid-file= --user=root --log-facility=/dev/null "$@" &
  pids+=($!)
}

"$BERTH_DNS" --records "$work/records" --resolv-conf "$work/resolv.conf" \
  --pid-file "$work/berth-dns.pid" 2>"$work/berth-dns.log" &
pids+=($!)
berth_pid=$!
peer_pid=""
if [ -n "$DNSMASQ" ]; then
  dnsmasq_at "$UP_IP" "$work/up-hosts"
  # The peer forwards like berth-dns: to the same upstream, no cache (berth-dns has none).
  dnsmasq_at "$PEER_IP" "$work/hosts" --server="$UP_IP" --cache-size=0
  peer_pid=$!
fi
wait_port "$BERTH_IP"
[ -n "$peer_pid" ] && wait_port "$PEER_IP"
sleep 0.5

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
anon() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
idle_berth=$(rss "$berth_pid"); anon_berth=$(anon "$berth_pid"); pss_berth=$(pss "$berth_pid")
idle_peer=""; anon_peer=""; pss_peer=""
if [ -n "$peer_pid" ]; then
  idle_peer=$(rss "$peer_pid"); anon_peer=$(anon "$peer_pid"); pss_peer=$(pss "$peer_pid")
fi

perf() { # perf NAME IP FILE: one dnsperf run; appends "qps latency_ms" to $work/t-NAME
  local out
  out=$(dnsperf -s "$2" -d "$3" -l "$SECS" -c 1 -q 100 2>&1)
  local qps lat lost
  qps=$(awk '/Queries per second:/ {printf "%d", $4}' <<<"$out")
  lat=$(awk '/Average Latency/ {printf "%.3f", $4 * 1000}' <<<"$out")
  lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
  [ -n "$qps" ] || { echo "dns.sh: dnsperf failed: $out" >&2; exit 1; }
  echo "$qps $lat $lost" >>"$work/t-$1"
}

column_median() { # column_median NAME COLUMN: of that column of $work/t-NAME
  [ -s "$work/t-$1" ] || return 0
  awk -v c="$2" '{print $c}' "$work/t-$1" | median_of
}

for _ in $(seq "$RUNS"); do
  perf berth-local "$BERTH_IP" "$work/local.txt"
  [ -n "$peer_pid" ] && perf peer-local "$PEER_IP" "$work/local.txt"
  if [ -n "$peer_pid" ]; then
    perf berth-far "$BERTH_IP" "$work/far.txt"
    perf peer-far "$PEER_IP" "$work/far.txt"
    perf direct-far "$UP_IP" "$work/far.txt"
  fi
done
after_berth=$(rss "$berth_pid")
after_peer=""
[ -n "$peer_pid" ] && after_peer=$(rss "$peer_pid")

printf "%s containers (name + alias each); dnsperf -l %ss -q 100, medians of %s runs\n\n" "$HOSTS" "$SECS" "$RUNS"
printf "%-28s %12s %12s %8s\n" "" "berth-dns" "dnsmasq" "ratio"
printf "%-28s %12s %12s %8s\n" "idle RSS (KiB)" "$idle_berth" "${idle_peer:--}" \
  "$( [ -n "$idle_peer" ] && awk -v a="$idle_berth" -v b="$idle_peer" 'BEGIN {printf "%.2f", a / b}' || echo -)"
printf "%-28s %12s %12s %8s\n" "idle private (RssAnon, KiB)" "$anon_berth" "${anon_peer:--}" \
  "$( [ -n "$anon_peer" ] && awk -v a="$anon_berth" -v b="$anon_peer" 'BEGIN {printf "%.2f", a / b}' || echo -)"
printf "%-28s %12s %12s %8s\n" "idle PSS (KiB)" "$pss_berth" "${pss_peer:--}" \
  "$( [ -n "$pss_peer" ] && awk -v a="$pss_berth" -v b="$pss_peer" 'BEGIN {printf "%.2f", a / b}' || echo -)"
printf "%-28s %12s %12s %8s\n" "RSS after the load (KiB)" "$after_berth" "${after_peer:--}" \
  "$( [ -n "$after_peer" ] && awk -v a="$after_berth" -v b="$after_peer" 'BEGIN {printf "%.2f", a / b}' || echo -)"
bq=$(column_median berth-local 1); pq=$(column_median peer-local 1)
printf "%-28s %12s %12s %8s\n" "local names (queries/s)" "$bq" "${pq:--}" \
  "$( [ -n "$pq" ] && awk -v a="$bq" -v b="$pq" 'BEGIN {printf "%.2f", a / b}' || echo -)"
bl=$(column_median berth-local 2); pl=$(column_median peer-local 2)
printf "%-28s %12s %12s\n" "local names (mean ms)" "$bl" "${pl:--}"
if [ -n "$peer_pid" ]; then
  fq=$(column_median berth-far 1); pfq=$(column_median peer-far 1); dq=$(column_median direct-far 1)
  printf "\n%-28s %12s %12s %8s %12s\n" "forwarded (no cache)" "berth-dns" "dnsmasq" "ratio" "direct"
  printf "%-28s %12s %12s %8s %12s\n" "forwarded names (queries/s)" "$fq" "$pfq" \
    "$(awk -v a="$fq" -v b="$pfq" 'BEGIN {printf "%.2f", a / b}')" "$dq"
  printf "%-28s %12s %12s %8s %12s\n" "forwarded names (mean ms)" "$(column_median berth-far 2)" \
    "$(column_median peer-far 2)" "" "$(column_median direct-far 2)"
fi
lost=$(cat "$work"/t-* | awk '{s += $3} END {print s + 0}')
echo
echo "queries lost in all runs: $lost"
[ -s "$work/berth-dns.log" ] && { echo "berth-dns stderr:"; cat "$work/berth-dns.log"; }
exit 0

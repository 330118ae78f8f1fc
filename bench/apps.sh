#!/usr/bin/env bash
# Benchmark (not a test): real servers in berth containers through published ports on
# 127.0.0.1, side by side with the same servers in podman containers and directly on the host.
# See bench/README.md.
#
# usage: bench/apps.sh [-R ROUNDS] [-d SECONDS] [-n REQUESTS] [-s SCALE] [-a APPS] [-g] [-k]
#   -R ROUNDS    measurements per server and engine; the median is reported (default 3)
#   -d SECONDS   length of each wrk and pgbench measurement (default 10)
#   -n REQUESTS  redis-benchmark requests per test (default 100000)
#   -s SCALE     pgbench scale factor (default 5)
#   -a APPS      which servers, comma-separated (default nginx,redis,postgres)
#   -g           also run the host's servers each in a cpu cgroup of its own (as a systemd
#                service would be): the column "host, own cgroup"; the ratios stay to "host"
#   -k           keep the work directory
# env: BERTH (default target/release/berth), PODMAN (default on PATH)
#
# Setup (Debian 12): apt-get install nginx redis-server redis-tools postgresql
#   postgresql-contrib wrk   (and podman for its column). Debian's services for them are
# not used: the script starts its own host instances, on its own ports, with their own data
# under the work directory (stop the system ones if they compete for the CPU).
#
# Images: `berth build` (FROM scratch, COPY, USER, CMD; no registry, no network) of build
# contexts assembled from the host's installed binaries, the libraries `ldd` lists for them,
# and the few files each needs (a minimal /etc/passwd and /etc/group, nginx's mime types,
# postgres's share files and a data directory made by the host's initdb). `berth save` then
# `podman load`: podman runs the very same images.
#
# Each server runs four ways, all measured from the host over 127.0.0.1:
#   host          the same binary, run directly on the host on its own port (the reference)
#   berth         `berth run -d -p 127.0.0.1:PORT:CPORT` (veth, bridge, nftables DNAT)
#   podman        `podman run -d -p 127.0.0.1:PORT:CPORT` (runc, CNI bridge + portmap)
#   berth host    `berth run -d --network host`: the container without the network path
#   host cg       (-g) the host's binary again, in a cpu cgroup of its own: the scheduler then
#                 weighs it as one group, as it weighs a container, instead of task by task
# Loads: nginx under `wrk -t2 -c32` on a 1 KiB static file; `redis-benchmark -q -t get,set`;
# `pgbench -S -c 8 -j 2` (select-only: the network's share, not the disk's) after
# `pgbench -i -s SCALE`. Within a round the order of the instances rotates. Everything stays on
# this machine; everything started is removed on exit.
set -euo pipefail

ROUNDS=3
DUR=10
REQS=100000
SCALE=5
APPS=nginx,redis,postgres
KEEP=0
CGROUP=0
while getopts "R:d:n:s:a:gkh" opt; do
  case $opt in
    R) ROUNDS=$OPTARG ;;
    d) DUR=$OPTARG ;;
    n) REQS=$OPTARG ;;
    s) SCALE=$OPTARG ;;
    a) APPS=$OPTARG ;;
    g) CGROUP=1 ;;
    k) KEEP=1 ;;
    h) sed -n '2,38p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done

. "$(dirname "$0")/lib.sh"
need_root
need_berth
need_tools wrk redis-server redis-benchmark redis-cli nginx pgbench psql curl python3 setpriv ldd
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] && [ -x "$PGBIN/postgres" ] || die "no postgres server (apt-get install postgresql)"
id postgres >/dev/null 2>&1 || die "no postgres user (apt-get install postgresql)"
PGUID=$(id -u postgres)
PGGID=$(id -g postgres)
[ -n "$PODMAN" ] || echo "note: podman is not installed: no podman column" >&2
want() { [[ ",$APPS," == *",$1,"* ]]; }

make_work bapps
chmod 755 "$work" # the host's nginx workers (nobody) and postgres read under it
podman_setup
b() { "$BERTH" --root "$work/berth" "$@"; }
p() { podman_in "$work/p" --runtime runc "$@"; }

hostpids=()
hostcg=""
cleanup() {
  set +e
  local pid
  # (only this script's own host servers, by their ids)
  for pid in "${hostpids[@]}"; do kill -INT "$pid" 2>/dev/null; done
  for pid in "${hostpids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  b rm -f $(b ps -aq 2>/dev/null) >>"$log" 2>&1
  b system reset -f >>"$log" 2>&1
  if [ -n "$PODMAN" ]; then
    p rm -af -t 0 >>"$log" 2>&1
    p system reset -f >>"$log" 2>&1
  fi
  [ -z "$hostcg" ] || rmdir "$hostcg" 2>/dev/null
  unmount_under "$work"
  if [ $KEEP = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- build contexts --------------------------------------------------------------------
base_rootfs() { # base_rootfs DIR: the directories every image has, passwd and group
  local d=$1
  mkdir -p "$d"/{etc,proc,sys,dev,run,tmp,var/tmp,root}
  chmod 1777 "$d/tmp" "$d/var/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\npostgres:x:%s:%s:postgres:/var/lib/postgresql:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' "$PGUID" "$PGGID" >"$d/etc/passwd"
  printf 'root:x:0:\npostgres:x:%s:\nnogroup:x:65534:\n' "$PGGID" >"$d/etc/group"
}
add_bin() { # add_bin DIR FILE...: each file (symlinks followed) and the libraries ldd lists
  local d=$1 f
  shift
  for f; do
    cp -L --parents "$f" "$d"
    ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
  done | sort -u | while read -r f; do
    [ -e "$d$f" ] || cp -L --parents "$f" "$d"
  done
  # glibc dlopens libgcc_s for thread cancellation
  [ -e /lib/x86_64-linux-gnu/libgcc_s.so.1 ] && [ ! -e "$d/lib/x86_64-linux-gnu/libgcc_s.so.1" ] &&
    cp -L --parents /lib/x86_64-linux-gnu/libgcc_s.so.1 "$d"
  return 0
}

add_tree() { # add_tree DIR PATH...: files and trees as they are (symlinks, modes) at their paths
  local d=$1
  shift
  tar -C / -cf - "${@#/}" | tar -C "$d" -xf -
}

nginx_conf() { # nginx_conf PREFIX PORT: a config with everything under PREFIX
  cat <<EOF
daemon off;
master_process on;
worker_processes 2;
user nobody nogroup;
pid $1/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  include $1/mime.types;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
  server {
    listen $2;
    root $1/html;
    location / { }
  }
}
EOF
}
nginx_tree() { # nginx_tree PREFIX_ON_DISK PREFIX_SEEN PORT [CONF_NAME]
  mkdir -p "$1/html" "$1/tmp"
  cp /etc/nginx/mime.types "$1/"
  head -c 1024 /dev/zero | tr '\0' 'x' >"$1/html/index.html"
  nginx_conf "$2" "$3" >"$1/${4:-nginx.conf}"
}

IMG_NGINX=localhost/bench-nginx:latest
IMG_REDIS=localhost/bench-redis:latest
IMG_PG=localhost/bench-postgres:latest
declare -A port # port[APP-WAY]: the host port each instance is reached on

progress "build contexts from the host's packages"
if want nginx; then
  for w in host berth podman hostnet hostcg; do port[nginx-$w]=$(free_port); done
  c=$work/ctx-nginx
  base_rootfs "$c/rootfs"
  add_bin "$c/rootfs" /usr/sbin/nginx
  nginx_tree "$c/rootfs/srv/nginx" /srv/nginx 8080
  nginx_conf /srv/nginx "${port[nginx-hostnet]}" >"$c/rootfs/srv/nginx/hostnet.conf"
  printf 'FROM scratch\nCOPY rootfs/ /\nEXPOSE 8080\nCMD ["/usr/sbin/nginx", "-e", "stderr", "-p", "/srv/nginx", "-c", "/srv/nginx/nginx.conf"]\n' >"$c/Dockerfile"
  nginx_tree "$work/nginx-host" "$work/nginx-host" "${port[nginx-host]}"
  nginx_tree "$work/nginx-hostcg" "$work/nginx-hostcg" "${port[nginx-hostcg]}"
fi
if want redis; then
  for w in host berth podman hostnet hostcg; do port[redis-$w]=$(free_port); done
  c=$work/ctx-redis
  base_rootfs "$c/rootfs"
  add_bin "$c/rootfs" /usr/bin/redis-server
  printf 'FROM scratch\nCOPY rootfs/ /\nEXPOSE 6379\nCMD ["/usr/bin/redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/tmp"]\n' >"$c/Dockerfile"
  mkdir -p "$work/redis-host" "$work/redis-hostcg"
fi
if want postgres; then
  for w in host berth podman hostnet hostcg; do port[postgres-$w]=$(free_port); done
  c=$work/ctx-postgres
  pgshare=$(dirname "$PGBIN" | sed 's,/usr/lib/postgresql/,/usr/share/postgresql/,')
  base_rootfs "$c/rootfs"
  add_bin "$c/rootfs" "$PGBIN/postgres"
  # the server checks that its lib directory exists; plpgsql is the one module a new database has
  add_tree "$c/rootfs" "$pgshare/timezonesets" "$pgshare/postgresql.conf.sample" "$(dirname "$PGBIN")/lib/plpgsql.so" \
    /usr/share/zoneinfo/UTC /usr/share/zoneinfo/Etc/UTC
  # one initdb (as postgres, on the host), copied to the image and to the host instance
  mkdir -p "$work/pginit" && chown postgres: "$work/pginit"
  setpriv --reuid "$PGUID" --regid "$PGGID" --clear-groups "$PGBIN/initdb" -D "$work/pginit/data" \
    -U postgres --auth=trust -E UTF8 --locale=C >>"$log" 2>&1 || die "initdb failed (see $log)"
  cat >>"$work/pginit/data/postgresql.conf" <<'EOF'
# bench/apps.sh: no disk waits in a network benchmark
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'UTC'
log_timezone = 'UTC'
jit = off
EOF
  echo 'host all all 0.0.0.0/0 trust' >>"$work/pginit/data/pg_hba.conf"
  mkdir -p "$c/pgdata/var/lib/postgresql"
  cp -a "$work/pginit/data" "$c/pgdata/var/lib/postgresql/data"
  for d in pg-host pg-hostcg; do
    mkdir -p "$work/$d"
    cp -a "$work/pginit/data" "$work/$d/data"
    chown postgres: "$work/$d"
  done
  printf 'FROM scratch\nCOPY rootfs/ /\nCOPY --chown=%s:%s pgdata/ /\nUSER %s:%s\nEXPOSE 5432\nCMD ["%s/postgres", "-D", "/var/lib/postgresql/data", "-c", "listen_addresses=*", "-k", "/tmp"]\n' \
    "$PGUID" "$PGGID" "$PGUID" "$PGGID" "$PGBIN" >"$c/Dockerfile"
fi

declare -A build_ms ctx_mb
for app in nginx redis postgres; do
  want $app || continue
  progress "berth build $app"
  ctx_mb[$app]=$(du -sm "$work/ctx-$app" | cut -f1)
  t0=$(now_ns)
  b build -t "localhost/bench-$app:latest" "$work/ctx-$app" >>"$log" 2>&1 || die "berth build $app failed (see $log)"
  build_ms[$app]=$((($(now_ns) - t0) / 1000000))
  if [ -n "$PODMAN" ]; then
    b save -o "$work/$app.tar" "localhost/bench-$app:latest" >>"$log" 2>&1
    p load -i "$work/$app.tar" >>"$log" 2>&1 || die "podman load $app failed (see $log)"
    rm -f "$work/$app.tar"
  fi
done

# --- servers -------------------------------------------------------------------------
wait_for() { # wait_for WHAT CMD...: until CMD succeeds, 60 s at most
  local what=$1 i
  shift
  for i in $(seq 300); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "$what did not come up (see $log)"
}
ready() { # ready APP PORT
  case $1 in
    nginx) curl -sf -o /dev/null "http://127.0.0.1:$2/index.html" ;;
    redis) [ "$(redis-cli -h 127.0.0.1 -p "$2" ping 2>/dev/null)" = PONG ] ;;
    postgres) psql -h 127.0.0.1 -p "$2" -U postgres -d postgres -Atc 'select 1' ;;
  esac
}

# in_cg CGROUP CMD...: CMD in the cgroup directory CGROUP (none: where we are)
in_cg() {
  local cg=$1
  shift
  if [ -z "$cg" ]; then exec "$@"; fi
  echo $BASHPID >"$cg/cgroup.procs" && exec "$@"
}
start_host() { # start_host APP WAY [CGROUP]: a host instance, in the background (pid remembered)
  local w=$2 cg=${3:-}
  case $1 in
    nginx) in_cg "$cg" /usr/sbin/nginx -e stderr -p "$work/nginx-$w" -c "$work/nginx-$w/nginx.conf" >>"$log" 2>&1 & ;;
    redis) in_cg "$cg" redis-server --port "${port[redis-$w]}" --bind 127.0.0.1 --protected-mode no --save "" \
      --appendonly no --dir "$work/redis-$w" >>"$log" 2>&1 & ;;
    postgres) in_cg "$cg" setpriv --reuid "$PGUID" --regid "$PGGID" --clear-groups "$PGBIN/postgres" \
      -D "$work/pg-$w/data" -p "${port[postgres-$w]}" -c listen_addresses=127.0.0.1 \
      -k "$work/pg-$w" >>"$log" 2>&1 & ;;
  esac
  hostpids+=($!)
}
cport() { case $1 in nginx) echo 8080 ;; redis) echo 6379 ;; postgres) echo 5432 ;; esac; }
hostnet_cmd() { # the image's command on its own port, in the host's network namespace (not redis)
  case $1 in
    nginx) echo /usr/sbin/nginx -e stderr -p /srv/nginx -c /srv/nginx/hostnet.conf ;;
    postgres) echo "$PGBIN/postgres" -D /var/lib/postgresql/data -p "${port[postgres-hostnet]}" -c listen_addresses=127.0.0.1 -k /tmp ;;
  esac
}
start_all() { # start_all APP: host, berth, podman and berth --network host instances
  local app=$1 img="localhost/bench-$1:latest" cp
  cp=$(cport "$app")
  start_host "$app" host
  [ -z "$hostcg" ] || start_host "$app" hostcg "$hostcg"
  b run -d --name "b-$app" -p "127.0.0.1:${port[$app-berth]}:$cp" "$img" >>"$log" 2>&1 ||
    die "berth run $app failed (see $log)"
  # shellcheck disable=SC2046 # the command's words have no spaces (redis's "" aside)
  if [ "$app" = redis ]; then
    b run -d --name "bh-$app" --network host "$img" /usr/bin/redis-server --port "${port[redis-hostnet]}" \
      --bind 127.0.0.1 --protected-mode no --save "" --appendonly no --dir /tmp >>"$log" 2>&1
  else
    b run -d --name "bh-$app" --network host "$img" $(hostnet_cmd "$app") >>"$log" 2>&1
  fi || die "berth run --network host $app failed (see $log)"
  if [ -n "$PODMAN" ]; then
    p run -d --pull=never --name "p-$app" -p "127.0.0.1:${port[$app-podman]}:$cp" "$img" >>"$log" 2>&1 ||
      die "podman run $app failed (see $log)"
  fi
  for w in "${ways[@]}"; do wait_for "$app ($w)" ready "$app" "${port[$app-$w]}"; done
}
stop_all() { # stop_all APP: the containers go; the host instances are stopped
  local pid
  b rm -f "b-$1" "bh-$1" >>"$log" 2>&1 || true
  [ -z "$PODMAN" ] || p rm -f -t 0 "p-$1" >>"$log" 2>&1 || true
  for pid in "${hostpids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${hostpids[@]}"; do wait "$pid" 2>/dev/null || true; done
  hostpids=()
}

ways=(host berth)
[ -z "$PODMAN" ] || ways+=(podman)
ways+=(hostnet)
if [ $CGROUP = 1 ]; then
  # cgroup v1's cpu hierarchy when there is one (hybrid hosts), else cgroup2's root
  if [ -d /sys/fs/cgroup/cpu ] && mountpoint -q /sys/fs/cgroup/cpu; then hostcg=/sys/fs/cgroup/cpu/bench-apps-$$
  else hostcg=/sys/fs/cgroup/bench-apps-$$; fi
  mkdir "$hostcg" || die "cannot make the cgroup $hostcg"
  ways+=(hostcg)
fi
declare -A label=([host]="host" [berth]="berth -p 127.0.0.1" [podman]="podman -p 127.0.0.1" [hostnet]="berth --network host" [hostcg]="host, own cgroup")

# measure APP WAY: one measurement into $work/t-KEY (one line a round; KEY as printed)
measure() {
  local app=$1 w=$2 pt=${port[$1-$2]} out
  case $app in
    nginx)
      out=$(wrk -t2 -c32 -d"${DUR}s" "http://127.0.0.1:$pt/index.html" 2>&1) || die "wrk failed: $out"
      echo "$out" >>"$log"
      echo "$out" | awk '/^Requests\/sec:/ { print $2 }' >>"$work/t-nginx-$w"
      ;;
    redis)
      out=$(redis-benchmark -h 127.0.0.1 -p "$pt" -t set,get -n "$REQS" -q --csv 2>&1) || die "redis-benchmark failed: $out"
      echo "$out" >>"$log"
      echo "$out" | awk -F'"' '$2 == "SET" { print $4 }' >>"$work/t-redis-set-$w"
      echo "$out" | awk -F'"' '$2 == "GET" { print $4 }' >>"$work/t-redis-get-$w"
      ;;
    postgres)
      out=$(pgbench -h 127.0.0.1 -p "$pt" -U postgres -n -S -c 8 -j 2 -T "$DUR" postgres 2>&1) || die "pgbench failed: $out"
      echo "$out" >>"$log"
      echo "$out" | awk '/^tps = / { print $3; exit }' >>"$work/t-pg-$w"
      ;;
  esac
}

for app in nginx redis postgres; do
  want $app || continue
  progress "$app: $(for w in "${ways[@]}"; do printf '%s, ' "${label[$w]}"; done)$ROUNDS rounds"
  start_all "$app"
  if [ "$app" = postgres ]; then
    for w in "${ways[@]}"; do
      pgbench -h 127.0.0.1 -p "${port[postgres-$w]}" -U postgres -i -q -s "$SCALE" postgres >>"$log" 2>&1 ||
        die "pgbench -i ($w) failed (see $log)"
    done
  fi
  for r in $(seq "$ROUNDS"); do
    n=${#ways[@]}
    for i in $(seq 0 $((n - 1))); do
      w=${ways[$(((i + r) % n))]}
      measure "$app" "$w"
    done
  done
  stop_all "$app"
done

# --- summary -------------------------------------------------------------------------
med() { [ -s "$work/t-$1" ] && median_of <"$work/t-$1" || echo 0; }
echo
echo "berth $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?)${PODMAN:+, $("$PODMAN" --version) (runc, CNI)}, nginx $(nginx -v 2>&1 | sed 's,.*/,,'), redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), postgres $("$PGBIN/postgres" --version | awk '{print $3}'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "images: berth build (FROM scratch, COPY), context / build time:$(for a in nginx redis postgres; do want $a && printf ' %s %s MB %s ms;' $a "${ctx_mb[$a]}" "${build_ms[$a]}"; done)"
echo "medians of $ROUNDS rounds; wrk -t2 -c32 -d${DUR}s (1 KiB file), redis-benchmark -n $REQS (50 clients), pgbench -S -c 8 -j 2 -T $DUR (scale $SCALE)"
printf '\n%-22s' ""
for w in "${ways[@]}"; do printf '%22s' "${label[$w]}"; done
printf '\n'
rowfmt() { # rowfmt TITLE KEY: throughput per way, then each one's ratio to the host
  local title=$1 key=$2 h w v
  h=$(med "$key-host")
  printf '%-22s' "$title"
  for w in "${ways[@]}"; do printf '%22.0f' "$(med "$key-$w")"; done
  printf '\n%-22s' "  x host"
  for w in "${ways[@]}"; do
    v=$(med "$key-$w")
    printf '%22s' "$(awk -v a="$v" -v b="$h" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
  done
  printf '\n'
}
want nginx && rowfmt "nginx (req/s)" nginx
want redis && rowfmt "redis SET (req/s)" redis-set
want redis && rowfmt "redis GET (req/s)" redis-get
want postgres && rowfmt "pgbench -S (tps)" pg
echo
echo "target: berth -p >= 0.90 x host for each (issue 17)"
echo "samples (per round, in order):"
for f in "$work"/t-*; do printf '  %-24s %s\n' "${f##*/t-}" "$(tr '\n' ' ' <"$f")"; done

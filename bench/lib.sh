# bench/lib.sh: what the benchmark scripts share. Each sources it after reading its options:
#   . "$(dirname "$0")/lib.sh"
# It sets here, repo, me (the script's name) and the engines' paths (BERTH, PODMAN, BUSYBOX:
# the environment's values win), and defines the helpers below. Nothing here runs anything.

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
me=$(basename "$0")
BERTH=${BERTH:-$repo/target/release/berth}
PODMAN=${PODMAN:-$(command -v podman || true)}
BUSYBOX=${BUSYBOX:-/bin/busybox}

die() { echo "$me: $*" >&2; exit 1; }
progress() { echo "== $*" >&2; }
need_root() { [ "$(id -u)" = 0 ] || die "must run as root${1:+ ($1)}"; }
need_tools() { # need_tools TOOL...: each from Debian's package of the same name
  local t
  for t; do command -v "$t" >/dev/null || die "$t is required (apt-get install $t)"; done
}
need_berth() {
  [ -x "$BERTH" ] || die "no berth at $BERTH (cargo build --release -p berth-cli -p berth-runtime -p berth-monitor)"
}
need_busybox() { [ -x "$BUSYBOX" ] || die "no busybox at $BUSYBOX (apt-get install busybox-static)"; }

make_work() { # make_work PREFIX: $work, a new directory under $TMPDIR, and $log in it
  work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  log=$work/log
  : >"$log"
}

# podman as in the interoperability test: a private store, CONTAINERS_CONF with the ulimits
# root can set (this host's hard limits are below podman's defaults), the cgroupfs manager,
# file events. $pdriver: overlay, or vfs when the work directory is itself on overlayfs.
podman_setup() {
  printf '[containers]\ndefault_ulimits = ["nofile=20000:20000","nproc=32768:32768"]\n[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n' >"$work/containers.conf"
  pdriver=overlay
  [ "$(findmnt -n -o FSTYPE -T "$work")" = overlay ] && pdriver=vfs
  return 0
}
podman_flags() { # podman_flags DIR: the global flags of a podman whose store is under DIR
  echo "--root $1/storage --runroot $1/run --tmpdir $1/tmp --network-config-dir $1/net --storage-driver $pdriver --cgroup-manager cgroupfs --events-backend file"
}
podman_in() { # podman_in DIR ARGS...: podman with its store under DIR
  local d=$1
  shift
  # shellcheck disable=SC2046 # the flags are words without spaces
  CONTAINERS_CONF=$work/containers.conf "$PODMAN" $(podman_flags "$d") "$@"
}

podman_reset() { # podman_reset DIR: empties the podman store under DIR and removes it
  [ -d "$1" ] || return 0
  podman_in "$1" system reset -f >/dev/null 2>&1 || true
  unmount_under "$1"
  rm -rf "$1"
}

berth_reset() { # berth_reset DIR: everything of the berth store DIR goes (containers,
  # bridges, nftables table, mounts), then DIR itself
  [ -d "$1" ] || return 0
  "$BERTH" --root "$1" system reset -f >/dev/null 2>&1 || true
  unmount_under "$1"
  rm -rf "$1"
}

unmount_under() { # unmount_under DIR: lazily unmounts everything mounted under DIR, deepest first
  local m
  for m in $(awk -v d="$1" 'index($5, d) == 1 { print length($5), $5 }' /proc/self/mountinfo | sort -rn | cut -d' ' -f2); do
    umount -l "$m" 2>/dev/null || true
  done
}

busybox_rootfs() { # busybox_rootfs DIR: a root filesystem of busybox's applets, passwd and group
  local d=$1 applet
  mkdir -p "$d"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,root,run,var}
  chmod 1777 "$d/tmp"
  cp "$BUSYBOX" "$d/bin/busybox"
  for applet in $("$BUSYBOX" --list-full); do
    [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$d/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$d/etc/passwd"
  printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$d/etc/group"
}

# Timed samples: one file $work/t-NAME of wall times in ms, one line a run.
now_ns() { date +%s%N; }
sample() { # sample NAME CMD...: one run of CMD after a sync; a failure ends the script
  local name=$1 t0 t1
  shift
  sync
  t0=$(now_ns)
  if ! "$@" >>"$log" 2>&1; then
    echo "$me: failed: $*" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  t1=$(now_ns)
  echo $(((t1 - t0) / 1000)) | awk '{ printf "%.1f\n", $1 / 1000 }' >>"$work/t-$name"
}
median_of() { # the median of the numbers on stdin
  sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
median() { # median NAME: of $work/t-NAME, one decimal; nothing when there are no samples
  [ -s "$work/t-$1" ] || return 0
  median_of <"$work/t-$1" | awk '{ printf "%.1f\n", $1 }'
}
samples() { [ -s "$work/t-$1" ] && tr '\n' ' ' <"$work/t-$1"; }

# crun 1.8 refuses this host's hybrid cgroup layout while cgroup2 holds hugetlb (PEERS.md):
# for crun's runs hugetlb moves to a v1 hierarchy at /sys/fs/cgroup/hugetlb, and back after.
hugetlb_mounted=0
hugetlb_dir_made=0
hugetlb_on_v2() { [ "$(awk '$1 == "hugetlb" { print $2 }' /proc/cgroups)" = 0 ]; }
hugetlb_to_v1() { # 0 when crun can run now; the mount's error goes to $log
  grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null || return 0
  mountpoint -q /sys/fs/cgroup/hugetlb 2>/dev/null && return 0
  if [ ! -d /sys/fs/cgroup/hugetlb ]; then
    mkdir /sys/fs/cgroup/hugetlb || return 1
    hugetlb_dir_made=1
  fi
  if mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>>"$log"; then
    hugetlb_mounted=1
    return 0
  fi
  undo_hugetlb
  return 1
}
# A v1 hierarchy that still has (dying) child cgroups when it is unmounted outlives its
# mount and keeps hugetlb away from cgroup2 for good. So: remove the empty children (podman's
# libpod_parent, containers of other runs; busy ones stay), unmount, check /proc/cgroups, and
# if hugetlb is still on v1, mount it again and retry.
undo_hugetlb() {
  local try
  if [ $hugetlb_mounted = 1 ]; then
    for try in 1 2 3 4 5 6 7 8 9 10; do
      find /sys/fs/cgroup/hugetlb -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
      umount /sys/fs/cgroup/hugetlb 2>/dev/null || true
      sleep 0.2
      if hugetlb_on_v2; then
        hugetlb_mounted=0
        break
      fi
      echo "note: the hugetlb v1 hierarchy outlived its umount (try $try); remounting to retry" >&2
      sleep 0.3
      mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb 2>/dev/null || true
    done
    if [ $hugetlb_mounted = 1 ]; then
      mountpoint -q /sys/fs/cgroup/hugetlb || hugetlb_mounted=0
      echo "$me: WARNING: hugetlb did not return to cgroup2 (see /proc/cgroups); to fix:" >&2
      echo "  mkdir -p /sys/fs/cgroup/hugetlb; mountpoint -q /sys/fs/cgroup/hugetlb || mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb; umount /sys/fs/cgroup/hugetlb; rmdir /sys/fs/cgroup/hugetlb" >&2
    fi
  fi
  if [ $hugetlb_dir_made = 1 ] && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    # a runtime that read mountinfo just before the umount may have made a plain
    # directory in the tmpfs underneath
    find /sys/fs/cgroup/hugetlb -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
    rmdir /sys/fs/cgroup/hugetlb && hugetlb_dir_made=0
  fi
  return 0
}

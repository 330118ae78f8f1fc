//! Rootless berth with a delegated cgroup v2 subtree (issue 16), in a qemu guest
//! booted with a pure cgroup v2 kernel (`berth_fixtures::vm`): this host's
//! cgroups are a v1 hybrid and delegate nothing to users.
//!
//! The guest does what systemd's `user@UID.service` (`Delegate=yes`) does: a
//! cgroup `user.slice/user-1000` whose directory and `cgroup.procs`,
//! `cgroup.subtree_control` and `cgroup.threads` belong to the user, with cpu,
//! memory and pids enabled in its parent's `cgroup.subtree_control`. A shell of
//! user 1000 (with a subordinate range, newuidmap/newgidmap from the host's
//! uidmap package, made setuid) is moved into it and runs rootless berth
//! through setpriv: `-m`, `--pids-limit` and `--cpus` are enforced, `stats`
//! reads the container's cgroup, `update` and `pause` work, and nothing is left
//! after `rm`; from outside its subtree the user's `stats` and `rm` work and
//! `exec` is refused in one line. User 1001, in a cgroup it does not own, is
//! refused limits in one line. Each case prints `CASE <name> ok` (else `CASE <name> FAIL <why>`).
//!
//! ```text
//! cargo test -p berth-cli --test rootless_cgroup_vm
//! ```
//!
//! Needs the Debian packages qemu-system-x86, linux-image-amd64, busybox-static,
//! uidmap and util-linux (setpriv); fails without them unless `BERTH_SKIP_VM=1`
//! says to skip it (which it then says loudly).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_fixtures::vm::{self, GuestRun};
use common::{busybox_tar, runtime, BERTH};

/// Cases the guest must report as ok.
const CASES: &[&str] = &[
    "image",
    "info",
    "memory",
    "oom",
    "pids",
    "cpu",
    "running",
    "leftovers",
    "undelegated",
];

/// As root: the users, their ranges, the delegated cgroup; then the user's
/// script from a shell in that cgroup, and the checks only root can make.
const SCRIPT: &str = r#"
chmod 4755 /usr/bin/newuidmap /usr/bin/newgidmap
for u in 1000 1001; do
  echo "u$u:x:$u:$u::/home/u$u:/bin/sh" >> /etc/passwd
  echo "u$u:x:$u:" >> /etc/group
  mkdir -p /home/u$u /run/user/$u
  chown $u:$u /home/u$u /run/user/$u
  chmod 700 /run/user/$u
done
printf 'u1000:100000:65536\nu1001:200000:65536\n' > /etc/subuid
cp /etc/subuid /etc/subgid
CG=/sys/fs/cgroup
mkdir $CG/user.slice
echo '+cpu +memory +pids' > $CG/user.slice/cgroup.subtree_control
D=$CG/user.slice/user-1000
mkdir $D
chown 1000:1000 $D $D/cgroup.procs $D/cgroup.subtree_control $D/cgroup.threads
# asuser UID CMD...: CMD as the user, with its HOME and XDG_RUNTIME_DIR only
asuser() {
  u=$1; shift
  /usr/local/bin/setpriv --reuid=$u --regid=$u --clear-groups \
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/u$u XDG_RUNTIME_DIR=/run/user/$u \
    BERTH_DAEMON_JSON=/nonexistent/daemon.json BERTH_LOOPBACK_REGISTRIES_ONLY=1 "$@"
}
# The user's shell, moved into its cgroup first.
sh -c "echo \$\$ > $D/cgroup.procs && exec /usr/local/bin/setpriv --reuid=1000 --regid=1000 --clear-groups env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/u1000 XDG_RUNTIME_DIR=/run/user/1000 BERTH_DAEMON_JSON=/nonexistent/daemon.json BERTH_LOOPBACK_REGISTRIES_ONLY=1 sh /user.sh"
# The same user from outside its subtree (here the root cgroup): stats and
# rm reach the container's cgroup; exec cannot move a process into it and
# says so in one line.
r=ok
st=$(asuser 1000 timeout 120 berth stats --no-stream --format '{{.MemUsage}}' keep 2>&1)
case "$st" in *" / 48MiB") ;; *) r="stats [$st]" ;; esac
err=$(asuser 1000 timeout 120 berth exec keep true 2>&1); rc=$?
echo "outside: stats [$st] exec rc=$rc [$err]"
[ $rc != 0 ] || r="exec joined a cgroup outside its own subtree"
[ "$(echo "$err" | wc -l)" = 1 ] || r="exec error not one line"
case "$err" in *"cgroup.procs: Permission denied"*) ;; *) r="exec error [$err]" ;; esac
asuser 1000 timeout 120 berth rm -f keep >/dev/null || r="rm"
[ "$r" = ok ] && echo "CASE outside ok" || echo "CASE outside FAIL $r"
echo "cgroups after: $(find $CG/user.slice -type d | tr '\n' ' ') subtree_control=[$(cat $D/cgroup.subtree_control)]"
left=$(find $D -name 'berth-*')
[ -z "$left" ] && echo "CASE leftovers ok" || echo "CASE leftovers FAIL cgroups left: $left"
# A user whose cgroup (here the root) is not its own: limits refused in one line.
asuser 1001 timeout 120 berth import /images/busybox.tar busybox:latest >/dev/null
err=$(asuser 1001 timeout 120 berth run --rm --network none -m 32m busybox true 2>&1); rc=$?
echo "undelegated: rc=$rc [$err]"
case "$err" in
  *"cannot apply -m/--memory: this host delegates no cgroup to the user") [ $rc = 125 ] && echo "CASE undelegated ok" || echo "CASE undelegated FAIL rc=$rc" ;;
  *) echo "CASE undelegated FAIL [$err]" ;;
esac
"#;

/// As user 1000, in its delegated cgroup.
const USER_SCRIPT: &str = r#"
B="timeout 120 berth"
D=/sys/fs/cgroup/user.slice/user-1000
ok() { echo "CASE $1 ok"; }
fail() { echo "CASE $1 FAIL $2"; }
R="--rm --network none"

case_image() {
  echo "image: uid $(id -u) in $(cat /proc/self/cgroup)"
  $B import /images/busybox.tar busybox:latest >/dev/null || { fail image "import"; return; }
  ok image
}

case_info() {
  out=$($B info --format '{{.CgroupDriver}} {{.CgroupVersion}} {{.MemoryLimit}} {{.PidsLimit}} {{.CPUCfsQuota}} {{.CPUSet}}' 2>&1)
  echo "info: [$out]"
  [ "$out" = "cgroupfs 2 true true true false" ] && ok info || fail info "[$out]"
}

# -m: memory.max in the container's own cgroup (its cgroup namespace's root).
case_memory() {
  out=$($B run $R -m 32m busybox cat /sys/fs/cgroup/memory.max 2>&1); rc=$?
  echo "memory: rc=$rc [$out] delegated: subtree_control=[$(cat $D/cgroup.subtree_control)] init=[$(cat $D/init/cgroup.procs 2>&1 | tr '\n' ' ')]"
  [ "$out" = 33554432 ] && ok memory || fail memory "memory.max [$out] rc=$rc"
}

# 100 MiB against -m 32m: the OOM killer (no swap in the guest).
case_oom() {
  out=$($B run $R -m 32m busybox dd if=/dev/zero of=/dev/null bs=100M count=1 2>&1); rc=$?
  echo "oom: rc=$rc [$out]"
  [ $rc = 137 ] && ok oom || fail oom "exit status $rc, want 137"
}

# --pids-limit 10 against 20 background sleeps.
case_pids() {
  out=$($B run $R --pids-limit 10 busybox sh -c '(i=0; while [ $i -lt 20 ]; do sleep 5 & i=$((i+1)); done; echo spawned $i) 2>&1; read -r m < /sys/fs/cgroup/pids.max; echo "pids.max: $m"; read -r e < /sys/fs/cgroup/pids.events; echo "pids.events: $e"' 2>&1); rc=$?
  echo "pids: rc=$rc [$out]"
  case "$out" in
    *"spawned 20"*) fail pids "all 20 processes were spawned" ;;
    *"pids.max: 10"*"pids.events: max "[1-9]*) ok pids ;;
    *) fail pids "unexpected output" ;;
  esac
}

case_cpu() {
  out=$($B run $R --cpus 0.5 busybox cat /sys/fs/cgroup/cpu.max 2>&1); rc=$?
  echo "cpu: rc=$rc [$out]"
  [ "$out" = "50000 100000" ] && ok cpu || fail cpu "cpu.max [$out]"
}

# A detached container: its cgroup under the delegated one, stats, update,
# pause, exec, and its cgroup gone after rm.
case_running() {
  id=$($B run -d --network none -m 64m --name s1 busybox sleep 1000) || { fail running "run -d"; return; }
  cg=$D/berth-$id
  r=ok
  [ -d $cg ] || r="no cgroup $cg"
  st=$($B stats --no-stream --format '{{.MemUsage}}|{{.PIDs}}' s1 2>&1)
  echo "running: stats [$st] memory.max=$(cat $cg/memory.max) procs=[$(cat $cg/cgroup.procs | tr '\n' ' ')]"
  case "$st" in
    0B*) r="stats: no memory used [$st]" ;;
    *" / 64MiB|1") ;;
    *) r="stats [$st]" ;;
  esac
  $B update --pids-limit 20 s1 >/dev/null || r="update"
  [ "$(cat $cg/pids.max)" = 20 ] || r="pids.max after update: $(cat $cg/pids.max)"
  $B pause s1 >/dev/null || r="pause"
  s=$($B inspect -f '{{.State.Status}}' s1); f=$(cat $cg/cgroup.freeze)
  echo "running: paused: status=$s cgroup.freeze=$f"
  [ "$s/$f" = paused/1 ] || r="after pause: $s/$f"
  $B unpause s1 >/dev/null || r="unpause"
  out=$($B exec s1 sh -c 'read -r m < /sys/fs/cgroup/memory.max; echo $m')
  [ "$out" = 67108864 ] || r="exec saw memory.max [$out]"
  $B rm -f s1 >/dev/null || r="rm"
  [ -e $cg ] && r="$cg left after rm"
  left=$($B ps -aq)
  [ -z "$left" ] || r="containers left: $left"
  [ "$r" = ok ] && ok running || fail running "$r"
}

# Left running for the root script's commands from outside the subtree.
case_keep() {
  $B run -d --network none -m 48m --name keep busybox sleep 1000 >/dev/null && ok keep || fail keep "run -d"
}

for c in image info memory oom pids cpu running keep; do
  t0=$(cut -d' ' -f1 /proc/uptime)
  case_$c
  echo "time $c: $t0 -> $(cut -d' ' -f1 /proc/uptime) s"
done
"#;

/// The berth under test and its runtime: `BERTH_BIN` (with the berth-runtime and
/// berth-monitor beside it) runs the guest against another build.
fn binaries() -> (PathBuf, PathBuf) {
    match std::env::var_os("BERTH_BIN").map(PathBuf::from) {
        Some(b) => {
            let rt = b.with_file_name("berth-runtime");
            (b, rt)
        }
        None => (PathBuf::from(BERTH), runtime().to_path_buf()),
    }
}

#[test]
fn rootless_limits_in_a_delegated_cgroup_v2_guest() {
    if vm::skip_requested() {
        return;
    }
    let started = Instant::now();
    let (berth, rt) = binaries();
    let bin_dir = berth.parent().unwrap();
    let mut guest = GuestRun::new()
        .binary_as(&berth, "/usr/local/bin/berth")
        .unwrap()
        .binary_as(&rt, "/usr/local/bin/berth-runtime")
        .unwrap()
        .binary_as(
            bin_dir.join("berth-monitor"),
            "/usr/local/bin/berth-monitor",
        )
        .unwrap();
    for (host, guest_path, package) in [
        ("/usr/bin/newuidmap", "/usr/bin/newuidmap", "uidmap"),
        ("/usr/bin/newgidmap", "/usr/bin/newgidmap", "uidmap"),
        ("/usr/bin/setpriv", "/usr/local/bin/setpriv", "util-linux"),
    ] {
        assert!(
            Path::new(host).is_file(),
            "{host} is missing (Debian package {package}; BERTH_SKIP_VM=1 skips VM tests)"
        );
        guest = guest.binary_as(host, guest_path).unwrap();
    }
    let out = guest
        .file("/images/busybox.tar", busybox_tar(), 0o644)
        .unwrap()
        .file("/user.sh", USER_SCRIPT, 0o755)
        .unwrap()
        .script(SCRIPT)
        .run(Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("the guest failed: {e}"));
    out.assert_cases(CASES, started);
}

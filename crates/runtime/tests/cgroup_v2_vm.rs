//! The runtime on a pure cgroup v2 kernel (`cgroup_no_v1=all`), in a qemu guest.
//!
//! One guest boot (about 5 s under TCG) runs every case from a shell script; each case
//! prints `CASE <name> ok` or `CASE <name> FAIL <why>` and the test asserts that every
//! expected case printed `ok`, showing the whole guest console otherwise.
//!
//! The runtime binary is `$BERTH_VM_RUNTIME` when set (e.g. `/usr/sbin/runc`, to check the
//! test itself against a reference runtime), else this crate's `berth-runtime`:
//!
//! ```text
//! cargo test -p berth-runtime --test cgroup_v2_vm
//! BERTH_VM_RUNTIME=/usr/sbin/runc cargo test -p berth-runtime --test cgroup_v2_vm
//! ```
//!
//! Needs the Debian packages qemu-system-x86, linux-image-amd64 and busybox-static; the
//! test fails without them unless `BERTH_SKIP_VM=1` says to skip it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_fixtures::vm::{self, GuestRun};
use berth_fixtures::Bundle;
use oci_spec::runtime::{
    Capability, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, Spec,
};

fn runtime_binary() -> PathBuf {
    match std::env::var_os("BERTH_VM_RUNTIME").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime")),
    }
}

/// A busybox bundle for `case` running `args`, in cgroup `/berth-vm/<case>`, with its
/// resources changed by `resources` and the whole spec by `spec`.
fn case_bundle(
    case: &str,
    args: &[&str],
    resources: impl FnOnce(&mut LinuxResources),
    spec: impl FnOnce(&mut Spec),
) -> Bundle {
    Bundle::busybox(args)
        .and_then(|b| {
            b.with_spec(|s| {
                let mut linux = s.linux().clone().unwrap_or_default();
                linux.set_cgroups_path(Some(PathBuf::from(format!("/berth-vm/{case}"))));
                let mut r = linux.resources().clone().unwrap_or_default();
                resources(&mut r);
                linux.set_resources(Some(r));
                s.set_linux(Some(linux));
                spec(s);
            })
        })
        .unwrap_or_else(|e| panic!("building the bundle for case {case}: {e}"))
}

fn no_resources(_: &mut LinuxResources) {}
fn no_spec(_: &mut Spec) {}

/// Cases the guest script must report as ok.
const CASES: &[&str] = &[
    "run", "memory", "pids", "cpu", "pause", "devices", "events", "delete", "cleanup",
];

/// The test body, run by busybox sh in the guest. `/usr/local/bin/rt` is the runtime;
/// bundles are under `/bundles/<case>`.
const SCRIPT: &str = r#"
RT="/usr/local/bin/rt --root /run/rt"
CG=/sys/fs/cgroup/berth-vm
T="timeout 60"
ok() { echo "CASE $1 ok"; }
fail() { echo "CASE $1 FAIL $2"; }
# status ID -> the container's status word (created, running, paused, stopped)
status() {
  $T $RT state "$1" 2>/dev/null | tr -d ' \n' | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p'
}
wait_status() { # ID WANT [tries of 0.1 s]
  n=0
  while [ $n -lt ${3:-100} ]; do
    [ "$(status "$1")" = "$2" ] && return 0
    sleep 0.1; n=$((n+1))
  done
  return 1
}
firstline() { read -r l < "$1"; echo "$l"; }
field() { # FILE KEY -> value of the "KEY value" line
  while read -r k v; do [ "$k" = "$2" ] && { echo "$v"; return 0; }; done < "$1"
  echo missing
}
kill_delete() { # ID
  $T $RT kill "$1" KILL >/dev/null 2>&1
  wait_status "$1" stopped 100
  $T $RT delete "$1" || $T $RT delete --force "$1"
}
gone() { # CASE: its cgroup must not exist any more
  [ -e $CG/$1 ] && fail delete "$CG/$1 left after delete"
}
create_start() { # CASE ID [OUTFILE]
  $T $RT create --bundle /bundles/$1 $2 </dev/null >${3:-/dev/null} 2>&1 || { fail $1 "create failed"; return 1; }
  $T $RT start $2 || { fail $1 "start failed"; $T $RT delete --force $2; return 1; }
}

# a: a plain run; output, PID 1, exit status.
case_run() {
  out=$($T $RT run --bundle /bundles/run vm-run 2>&1 </dev/null); rc=$?
  echo "run: rc=$rc out=[$out]"
  case "$out" in
    *hello-from-container*pid=1*) ;;
    *) fail run "unexpected output"; return ;;
  esac
  [ $rc = 3 ] || { fail run "exit status $rc, want 3"; return; }
  ok run
}

# b: memory limit 32 MiB; pid 1 (dd bs=100M) allocates 100 MiB.
case_memory() {
  create_start memory vm-memory /tmp/memory.out || return
  mmax=$(firstline $CG/memory/memory.max)
  wait_status vm-memory stopped 300 || { fail memory "did not stop: $(status vm-memory)"; kill_delete vm-memory; return; }
  oomk=$(field $CG/memory/memory.events oom_kill)
  echo "memory: memory.max=$mmax oom_kill=$oomk output=[$(cat /tmp/memory.out)]"
  $T $RT delete vm-memory || { fail memory "delete failed"; return; }
  gone memory
  out=$($T $RT run --bundle /bundles/memory vm-memory2 2>&1 </dev/null); rc=$?
  echo "memory: run rc=$rc out=[$out]"
  [ "$mmax" = 33554432 ] || { fail memory "memory.max=$mmax"; return; }
  [ "$oomk" != missing ] && [ "$oomk" -ge 1 ] || { fail memory "oom_kill=$oomk"; return; }
  [ $rc = 137 ] || { fail memory "run exit status $rc, want 137"; return; }
  ok memory
}

# c: pids limit 10 against 20 background sleeps.
case_pids() {
  out=$($T $RT run --bundle /bundles/pids vm-pids 2>&1 </dev/null); rc=$?
  echo "pids: rc=$rc out=[$out]"
  case "$out" in
    *"spawned 20"*) fail pids "all 20 processes were spawned" ;;
    *"pids.max: 10"*"pids.events: max "[1-9]*) ok pids ;;
    *) fail pids "unexpected output" ;;
  esac
}

# d: cpu.max quota and throttling of a busy loop, read from the host side.
case_cpu() {
  create_start cpu vm-cpu || return
  sleep 2
  cmax=$(firstline $CG/cpu/cpu.max)
  thr=$(field $CG/cpu/cpu.stat nr_throttled)
  echo "cpu: cpu.max=[$cmax] nr_throttled=$thr status=$(status vm-cpu)"
  kill_delete vm-cpu || { fail cpu "kill/delete failed"; return; }
  gone cpu
  [ "$cmax" = "10000 100000" ] || { fail cpu "cpu.max=$cmax"; return; }
  [ "$thr" != missing ] && [ "$thr" -ge 1 ] || { fail cpu "nr_throttled=$thr"; return; }
  ok cpu
}

# e: pause / resume through cgroup.freeze.
case_pause() {
  create_start pause vm-pause || return
  wait_status vm-pause running 50 || fail pause "not running: $(status vm-pause)"
  $T $RT pause vm-pause || fail pause "pause failed"
  f1=$(firstline $CG/pause/cgroup.freeze); s1=$(status vm-pause); e1=$(field $CG/pause/cgroup.events frozen)
  $T $RT resume vm-pause || fail pause "resume failed"
  f2=$(firstline $CG/pause/cgroup.freeze); s2=$(status vm-pause); e2=$(field $CG/pause/cgroup.events frozen)
  echo "pause: paused freeze=$f1 frozen=$e1 status=$s1; resumed freeze=$f2 frozen=$e2 status=$s2"
  kill_delete vm-pause || { fail pause "kill/delete failed"; return; }
  gone pause
  [ "$f1/$e1/$s1" = 1/1/paused ] || { fail pause "after pause: freeze=$f1 frozen=$e1 status=$s1"; return; }
  [ "$f2/$e2/$s2" = 0/0/running ] || { fail pause "after resume: freeze=$f2 frozen=$e2 status=$s2"; return; }
  ok pause
}

# f: device rules (deny all, allow the usual); CAP_MKNOD is granted, so EPERM comes from the cgroup.
case_devices() {
  out=$($T $RT run --bundle /bundles/devices vm-devices 2>&1 </dev/null); rc=$?
  echo "devices: rc=$rc out=[$out]"
  case "$out" in
    *sda-readable*) fail devices "block device 8:0 was readable" ;;
    *null-ok*"Operation not permitted"*) ok devices ;;
    *) fail devices "unexpected output" ;;
  esac
}

# g: events --stats prints JSON with memory usage.
case_events() {
  create_start events vm-events || return
  ev=$($T $RT events --stats vm-events 2>&1); rc=$?
  echo "events: rc=$rc out=[$ev]"
  kill_delete vm-events || fail events "kill/delete failed"
  gone events
  flat=$(echo "$ev" | tr -d ' \n\t')
  case "$flat" in
    "{"*'"memory":{'*'"usage":'*) ok events ;;
    *) fail events "no memory usage in events --stats (rc=$rc)" ;;
  esac
}

# h: delete removes the cgroup (of a created, never started container here).
case_delete() {
  $T $RT create --bundle /bundles/delete vm-delete </dev/null >/dev/null 2>&1 || { fail delete "create failed"; return; }
  [ -d $CG/delete ] || fail delete "no cgroup $CG/delete after create"
  $T $RT delete --force vm-delete || { fail delete "delete failed"; return; }
  if [ -e $CG/delete ]; then fail delete "$CG/delete left after delete"; else ok delete; fi
}

# Nothing left behind.
case_cleanup() {
  left=$(find $CG -mindepth 1 -type d 2>/dev/null)
  listed=$($T $RT list 2>/dev/null | grep vm-)
  echo "cleanup: cgroups left=[$left] containers listed=[$listed]"
  [ -z "$left" ] || { fail cleanup "cgroups left: $left"; return; }
  [ -z "$listed" ] || { fail cleanup "containers left: $listed"; return; }
  ok cleanup
}

for c in run memory pids cpu pause devices events delete cleanup; do
  t0=$(cut -d' ' -f1 /proc/uptime)
  case_$c
  echo "time $c: $t0 -> $(cut -d' ' -f1 /proc/uptime) s"
done
"#;

#[test]
fn cgroup_v2_in_a_pure_v2_guest() {
    if vm::skip_requested() {
        return;
    }
    let started = Instant::now();
    let runtime = runtime_binary();
    eprintln!("runtime under test: {}", runtime.display());

    let bundles: Vec<(&str, Bundle)> = vec![
        (
            "run",
            case_bundle(
                "run",
                &["sh", "-c", "echo hello-from-container; echo pid=$$; exit 3"],
                no_resources,
                no_spec,
            ),
        ),
        (
            "memory",
            case_bundle(
                "memory",
                &["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"],
                |r| {
                    let mem = LinuxMemoryBuilder::default()
                        .limit(32 * 1024 * 1024_i64)
                        .build()
                        .expect("memory");
                    r.set_memory(Some(mem));
                },
                no_spec,
            ),
        ),
        (
            "pids",
            case_bundle(
                "pids",
                &[
                    "sh",
                    "-c",
                    "(i=0; while [ $i -lt 20 ]; do sleep 5 & i=$((i+1)); done; echo spawned $i) 2>&1; \
                     read -r m < /sys/fs/cgroup/pids.max; echo \"pids.max: $m\"; \
                     read -r e < /sys/fs/cgroup/pids.events; echo \"pids.events: $e\"",
                ],
                |r| {
                    let pids = LinuxPidsBuilder::default()
                        .limit(10)
                        .build()
                        .expect("pids");
                    r.set_pids(Some(pids));
                },
                no_spec,
            ),
        ),
        (
            "cpu",
            case_bundle(
                "cpu",
                &["sh", "-c", "while :; do :; done"],
                |r| {
                    let cpu = LinuxCpuBuilder::default()
                        .quota(10000_i64)
                        .period(100000_u64)
                        .build()
                        .expect("cpu");
                    r.set_cpu(Some(cpu));
                },
                no_spec,
            ),
        ),
        (
            "pause",
            case_bundle("pause", &["sleep", "1000"], no_resources, no_spec),
        ),
        (
            "devices",
            case_bundle(
                "devices",
                &[
                    "sh",
                    "-c",
                    "echo x > /dev/null && echo null-ok; \
                     head -c 4 /dev/zero | wc -c; \
                     mknod /tmp/sda b 8 0 && echo mknod-ok && cat /tmp/sda > /dev/null && echo sda-readable; \
                     true",
                ],
                no_resources,
                |s| {
                    let mut process = s.process().clone().unwrap_or_default();
                    let mut caps = process.capabilities().clone().unwrap_or_default();
                    let add = |set: &Option<HashSet<Capability>>| {
                        let mut set = set.clone().unwrap_or_default();
                        set.insert(Capability::Mknod);
                        Some(set)
                    };
                    caps.set_bounding(add(caps.bounding()));
                    caps.set_effective(add(caps.effective()));
                    caps.set_permitted(add(caps.permitted()));
                    process.set_capabilities(Some(caps));
                    s.set_process(Some(process));
                },
            ),
        ),
        (
            "events",
            case_bundle("events", &["sleep", "1000"], no_resources, no_spec),
        ),
        (
            "delete",
            case_bundle("delete", &["sleep", "1000"], no_resources, no_spec),
        ),
    ];

    let mut guest = GuestRun::new()
        .binary_as(&runtime, "/usr/local/bin/rt")
        .unwrap_or_else(|e| panic!("adding the runtime {}: {e}", runtime.display()));
    // Files are read when the guest is built: the bundles must live until `run` returns.
    for (case, bundle) in &bundles {
        guest = guest
            .tree(bundle.path(), format!("/bundles/{case}"))
            .unwrap_or_else(|e| panic!("adding bundle {case}: {e}"));
    }
    let prepared = started.elapsed();
    let out = guest
        .script(SCRIPT)
        .run(Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("the guest failed: {e}"));
    let body = out.body();
    eprintln!(
        "guest output:\n{body}\nbundles prepared in {prepared:?}, guest ran {:?}, total {:?}",
        out.duration,
        started.elapsed()
    );
    let mut failed = Vec::new();
    for case in CASES {
        if !body.contains(&format!("CASE {case} ok")) {
            failed.push(*case);
        }
    }
    if let Some(line) = body.lines().find(|l| l.contains(" FAIL ")) {
        if failed.is_empty() {
            failed.push("(extra failure)");
        }
        eprintln!("first failure: {line}");
    }
    assert!(
        failed.is_empty() && out.status == 0,
        "cases not ok: {failed:?} (body exit status {}); full guest console:\n{}",
        out.status,
        out.console
    );
}

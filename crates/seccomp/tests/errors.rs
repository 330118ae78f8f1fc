//! Invalid profiles give one-line errors naming the field.

use berth_seccomp::{compile, docker_default_profile, parse_profile};
use std::time::{Duration, Instant};

fn parse_err(v: serde_json::Value) -> String {
    parse_profile(&v.to_string())
        .expect_err("should be rejected")
        .to_string()
}

fn compile_err(v: serde_json::Value) -> String {
    let p = serde_json::from_value(v).expect("valid OCI shape");
    compile(&p).expect_err("should be rejected").to_string()
}

#[test]
fn unknown_action() {
    let e = parse_err(serde_json::json!({"defaultAction": "SCMP_ACT_FOO"}));
    assert_eq!(
        e,
        r#"linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO""#
    );
    let e = parse_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["read"], "action": "ALLOW"}]
    }));
    assert_eq!(
        e,
        r#"linux.seccomp.syscalls[1].action: unknown action "ALLOW""#
    );
}

#[test]
fn unknown_op() {
    let e = parse_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["read"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]
    }));
    assert_eq!(
        e,
        r#"linux.seccomp.syscalls[3].args[0].op: unknown operator "SCMP_CMP_FOO""#
    );
}

#[test]
fn unknown_arch_and_flag() {
    let e = parse_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]
    }));
    assert_eq!(
        e,
        r#"linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80""#
    );
    let e = parse_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]
    }));
    assert_eq!(
        e,
        r#"linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NOPE""#
    );
}

#[test]
fn arg_index_out_of_range() {
    let v = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"},
                               {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    });
    let want = "linux.seccomp.syscalls[0].args[1].index: 6 is out of range 0..=5";
    assert_eq!(parse_err(v.clone()), want);
    assert_eq!(compile_err(v), want);
}

#[test]
fn notify_is_not_supported() {
    let e = compile_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    assert_eq!(
        e,
        "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"
    );
    let e = compile_err(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert!(
        e.starts_with("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY"),
        "{e}"
    );
}

#[test]
fn errno_out_of_range() {
    let e = compile_err(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000
    }));
    assert_eq!(
        e,
        "linux.seccomp.defaultErrnoRet: 70000 is out of range 0..=65535"
    );
}

#[test]
fn not_json() {
    let e = parse_profile("{").expect_err("bad json").to_string();
    assert!(e.starts_with("linux.seccomp: "), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn docker_profile_compiles_fast() {
    let p = docker_default_profile();
    let _ = compile(&p).expect("compiles"); // warm the name tables
    let n = 20;
    let start = Instant::now();
    for _ in 0..n {
        let f = compile(&p).expect("compiles");
        assert!(f.program.len() < berth_seccomp::BPF_MAXINSNS);
    }
    let per = start.elapsed() / n;
    eprintln!("docker profile: {per:?} per compile");
    // Debug builds are ~10-30x slower than release; release is well < 1 ms.
    let limit = if cfg!(debug_assertions) {
        Duration::from_millis(20)
    } else {
        Duration::from_millis(1)
    };
    assert!(per < limit, "compiling the docker profile took {per:?}");
}

#[test]
fn docker_profile_skips_nothing_known() {
    let f = compile(&docker_default_profile()).expect("compiles");
    // Names of other architectures and very new syscalls may be skipped,
    // but nothing the rules depend on.
    for core in [
        "read",
        "clone",
        "clone3",
        "personality",
        "socket",
        "exit_group",
        "chroot",
    ] {
        assert!(!f.skipped.iter().any(|s| s == core), "{core} skipped");
    }
    assert!(f.skipped.len() < 20, "{:?}", f.skipped);
    eprintln!("skipped: {:?}; {} insns", f.skipped, f.program.len());
}

//! Records the commit berth is built from for `berth --version` (Docker's
//! "build 297e128"): `git rev-parse --short=7 HEAD` where the source is a git
//! checkout, else BERTH_GIT_COMMIT from the environment, else "unknown" (a
//! tarball).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

/// Whether this source tree is the git checkout's own (a tarball unpacked
/// inside some other repository is not).
fn in_own_checkout() -> bool {
    let (Some(top), Ok(here)) = (
        git(&["rev-parse", "--show-toplevel"]),
        std::env::var("CARGO_MANIFEST_DIR"),
    ) else {
        return false;
    };
    let top = std::path::Path::new(&top).join("crates/cli").canonicalize();
    let here = std::path::Path::new(&here).canonicalize();
    matches!((top, here), (Ok(a), Ok(b)) if a == b)
}

fn watch(path: Option<String>) {
    if let Some(p) = path.filter(|p| std::path::Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={p}");
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=BERTH_GIT_COMMIT");
    let own = in_own_checkout();
    let commit = std::env::var("BERTH_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            own.then(|| git(&["rev-parse", "--short=7", "HEAD"]))
                .flatten()
        })
        .filter(|c| c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_owned());
    // Rebuilt when HEAD moves: HEAD itself (a branch switch) and the ref
    // it names (a commit on the branch), where they are files.
    if own {
        watch(git(&["rev-parse", "--git-path", "HEAD"]));
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch(git(&["rev-parse", "--git-path", &r]));
        }
    }
    println!("cargo:rustc-env=BERTH_GIT_COMMIT={commit}");
    pack_relative_relocations();
}

/// Links `berth` with its relative relocations packed (DT_RELR, glibc 2.36,
/// binutils 2.38): the dynamic loader then walks a 5 KB bitmap instead of
/// 15 000 RELA entries (376 KB) at every start, ~0.5–0.9 ms of every command
/// on a 2-vCPU VM. Only where the linker knows the option.
fn pack_relative_relocations() {
    let knows = Command::new("ld")
        .arg("--help")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("pack-relative-relocs"));
    if knows && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

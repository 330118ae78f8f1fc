//! `BERTH_SECCOMP_SOURCE_ID`: a hash of this crate's sources and of the
//! syscall tables' version, which keys the on-disk cache of compiled
//! programs (src/cache.rs): a berth whose compiler or tables changed never
//! reads another build's programs. (The executable's own identity cannot
//! serve: a runtime re-executes itself from a sealed copy, a new file each
//! time.)

use std::hash::{Hash, Hasher};

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut files: Vec<_> = std::fs::read_dir("src")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        f.hash(&mut h);
        std::fs::read(&f).unwrap_or_default().hash(&mut h);
    }
    // The syscalls crate's version, as the workspace's lock file pins it.
    let lock = std::path::Path::new("../../Cargo.lock");
    println!("cargo:rerun-if-changed=../../Cargo.lock");
    if let Ok(text) = std::fs::read_to_string(lock) {
        let mut lines = text.lines();
        while let Some(l) = lines.next() {
            if l == "name = \"syscalls\"" {
                lines.next().hash(&mut h);
            }
        }
    }
    std::env::var("CARGO_PKG_VERSION")
        .unwrap_or_default()
        .hash(&mut h);
    println!(
        "cargo:rustc-env=BERTH_SECCOMP_SOURCE_ID={:016x}",
        h.finish()
    );
}

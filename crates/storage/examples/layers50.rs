//! Builds an image of 50 small layers, then times creating, mounting,
//! unmounting and removing a container on it 20 times and prints the median.
//!
//! `cargo run --release -p berth-storage --example layers50 [overlay|vfs] [DIR]`
//! (DIR: where the temporary store goes; default the system temp dir).

use berth_digest::Digest;
use berth_storage::{DriverKind, InitFiles, LayerStore};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let driver: Option<DriverKind> = args.next().map(|d| d.parse()).transpose()?;
    let base = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base)?;
    let store = LayerStore::open(&dir.path().join("storage"), driver)?;
    let mut parent: Option<Digest> = None;
    for i in 0..50 {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o755);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, format!("layer{i}"), &[][..])?;
        for f in 0..10 {
            let data = format!("layer {i} file {f}\n");
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_600_000_000);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, format!("layer{i}/f{f}"), data.as_bytes())?;
        }
        let id = Digest::of(format!("layers50-{i}").as_bytes());
        store.apply_layer(&id, parent.as_ref(), &b.into_inner()?[..])?;
        parent = Some(id);
    }
    let top = parent.ok_or("no layers")?;
    let init = InitFiles {
        hostname: "bench".into(),
        hosts: "127.0.0.1 localhost\n".into(),
        resolv_conf: "nameserver 127.0.0.1\n".into(),
    };
    let mut times: Vec<Duration> = Vec::new();
    for i in 0..20 {
        let name = format!("bench{i}");
        let start = Instant::now();
        store.create_container(&name, Some(&top), &init)?;
        let root = store.mount_container(&name)?;
        if !root.join("layer0/f0").exists() {
            return Err("layer0/f0 missing from the rootfs".into());
        }
        store.unmount_container(&name)?;
        store.remove_container(&name)?;
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "driver={} layers=50 runs=20 create+mount+unmount+remove median={:.2}ms min={:.2}ms max={:.2}ms",
        store.driver().name(),
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    Ok(())
}

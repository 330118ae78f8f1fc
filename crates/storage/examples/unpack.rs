//! Measures unpacking speed: builds an uncompressed layer tar of many files
//! (default 200 MB in files of 4 KiB to 1 MiB) in memory, applies it and
//! prints MB/s. `BERTH_UNPACK_FILE_KB=4` makes every file 4 KiB instead.
//!
//! `cargo run --release -p berth-storage --example unpack [overlay|vfs] [MB] [DIR]`

use berth_digest::Digest;
use berth_storage::{DriverKind, LayerStore};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let driver: Option<DriverKind> = args.next().map(|d| d.parse()).transpose()?;
    let mb: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200);
    let base = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base)?;
    let store = LayerStore::open(&dir.path().join("storage"), driver)?;
    let mut b = tar::Builder::new(Vec::new());
    // BERTH_UNPACK_FILE_KB=4: every file that size (many small files).
    let sizes: Vec<usize> = match std::env::var("BERTH_UNPACK_FILE_KB") {
        Ok(kb) => vec![kb.parse::<usize>()? << 10],
        Err(_) => vec![4096, 16 << 10, 64 << 10, 256 << 10, 1 << 20],
    };
    let chunk: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    let (mut total, mut n) = (0u64, 0usize);
    while total < mb << 20 {
        if n % 100 == 0 {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mode(0o755);
            b.append_data(&mut h, format!("d{}", n / 100), &[][..])?;
        }
        let size = sizes[n % sizes.len()];
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(size as u64);
        b.append_data(&mut h, format!("d{}/f{n}", n / 100), &chunk[..size])?;
        total += size as u64;
        n += 1;
    }
    let tar = b.into_inner()?;
    let start = Instant::now();
    let applied = store.apply_layer(&Digest::of(b"unpack"), None, &tar[..])?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "driver={} files={n} data={:.0}MB tar={:.0}MB time={:.2}s speed={:.0}MB/s (tar bytes/s, sha256 included)",
        store.driver().name(),
        applied.size as f64 / 1e6,
        applied.tar_size as f64 / 1e6,
        secs,
        applied.tar_size as f64 / 1e6 / secs
    );
    Ok(())
}

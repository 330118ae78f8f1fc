//! `berth-dns --records FILE --resolv-conf FILE [--pid-file FILE]`: the DNS
//! resolver of a berth root's user networks (see the library's docs).

use berth_dns::server::{run, Config};
use std::path::PathBuf;

const USAGE: &str = "usage: berth-dns --records FILE --resolv-conf FILE [--pid-file FILE]";

fn parse(mut args: impl Iterator<Item = std::ffi::OsString>) -> Result<Config, String> {
    let (mut records, mut resolv, mut pid) = (None, None, None);
    while let Some(a) = args.next() {
        let slot = match a.to_str() {
            Some("--records") => &mut records,
            Some("--resolv-conf") => &mut resolv,
            Some("--pid-file") => &mut pid,
            Some("-h" | "--help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument {a:?}")),
        };
        let v = args
            .next()
            .ok_or_else(|| format!("{} needs a value", a.to_string_lossy()))?;
        *slot = Some(PathBuf::from(v));
    }
    Ok(Config {
        records: records.ok_or("--records is required")?,
        resolv_conf: resolv.ok_or("--resolv-conf is required")?,
        pid_file: pid,
    })
}

fn main() {
    let cfg = match parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-dns: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(cfg) {
        eprintln!("berth-dns: {e}");
        std::process::exit(1);
    }
}

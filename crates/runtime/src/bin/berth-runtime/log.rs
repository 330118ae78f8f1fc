//! Error and debug output: always one line on stderr, and, with `--log`, the
//! same line in the log file (as JSON for `--log-format json`, which is how
//! containerd's shim reads a runtime's errors).

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
    #[allow(dead_code)]
    debug: bool,
}

impl Logger {
    pub fn new(file: Option<&Path>, format: &str, debug: bool) -> Logger {
        Logger {
            file: file.map(Path::to_owned),
            json: format == "json",
            debug,
        }
    }

    /// With `--log`, errors go to the log only (where the caller, e.g.
    /// containerd's shim or berth's engine, reads them), so that a caller
    /// that shares our stderr with the container does not print them twice.
    pub fn error(&self, msg: &str) {
        if self.file.is_none() {
            eprintln!("berth-runtime: {msg}");
        }
        self.to_file("error", msg);
    }

    fn to_file(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else { return };
        let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg={msg:?}")
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

//! Error and debug output, as runc prints it: an error is always written to
//! stderr (where callers such as containerd's shim read it: the shim puts
//! that text in its own error and matches "container not running" or "does
//! not exist" in it) and, with `--log`, also to the log file, as logrus's
//! text line or, for `--log-format json`, as a JSON record (which the shim
//! and berth's engine read after a failed create or start). Without `--log`
//! stderr gets logrus's text line (`time="…" level=error msg="…"`); with it,
//! the bare message.
//!
//! `BERTH_RUNTIME_LOG_ONLY=1` (set by berth's engine and monitor, which read
//! the `--log` file and give the runtime the container's own stderr) keeps
//! errors out of stderr when `--log` is given.

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Logger {
    file: Option<PathBuf>,
    json: bool,
    #[allow(dead_code)]
    debug: bool,
}

/// The variable that keeps errors logged to `--log` off stderr.
const LOG_ONLY: &str = "BERTH_RUNTIME_LOG_ONLY";

impl Logger {
    pub fn new(file: Option<&Path>, format: &str, debug: bool) -> Logger {
        Logger {
            file: file.map(Path::to_owned),
            json: format == "json",
            debug,
        }
    }

    pub fn error(&self, msg: &str) {
        let time = now();
        match &self.file {
            None => eprintln!("{}", text_line(&time, "error", msg)),
            Some(_) => {
                if std::env::var_os(LOG_ONLY).is_none_or(|v| v != "1") {
                    eprintln!("{msg}");
                }
                self.to_file(&time, "error", msg);
            }
        }
    }

    fn to_file(&self, time: &str, level: &str, msg: &str) {
        let Some(path) = &self.file else { return };
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            text_line(time, level, msg)
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

/// Now, in RFC 3339 with seconds, UTC (logrus's default time format).
fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// logrus's text format: `time="T" level=L msg="M"`.
fn text_line(time: &str, level: &str, msg: &str) -> String {
    format!("time={time:?} level={level} msg={msg:?}")
}

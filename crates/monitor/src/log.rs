//! Docker's json-file log: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}`,
//! rotated when the file would pass `max_size` (`NAME.1` … `NAME.(max_files-1)`).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

pub struct JsonLog {
    path: Option<PathBuf>,
    file: Option<File>,
    size: u64,
    max_size: u64,
    max_files: u32,
    /// Unterminated output per stream (stdout, stderr), until its newline.
    pending: [Vec<u8>; 2],
}

/// A partial line is written out once it is this long.
const MAX_PENDING: usize = 16 * 1024;

impl JsonLog {
    pub fn open(path: &Option<PathBuf>, max_size: u64, max_files: u32) -> JsonLog {
        let file = path.as_ref().and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(p)
                .ok()
        });
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        JsonLog {
            path: path.clone(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            pending: [Vec::new(), Vec::new()],
        }
    }

    pub fn write(&mut self, stream: &str, data: &[u8]) {
        if self.file.is_none() {
            return;
        }
        let k = usize::from(stream == "stderr");
        let mut buf = std::mem::take(&mut self.pending[k]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl + 1;
            self.entry(stream, &buf[start..end]);
            start = end;
        }
        let rest = &buf[start..];
        if rest.len() >= MAX_PENDING {
            self.entry(stream, rest);
        } else {
            self.pending[k] = rest.to_vec();
        }
    }

    /// Writes out unterminated output (at exit).
    pub fn flush(&mut self) {
        for (k, stream) in [(0, "stdout"), (1, "stderr")] {
            let rest = std::mem::take(&mut self.pending[k]);
            if !rest.is_empty() {
                self.entry(stream, &rest);
            }
        }
    }

    fn entry(&mut self, stream: &str, line: &[u8]) {
        let mut s = String::with_capacity(line.len() + 96);
        s.push_str("{\"log\":\"");
        escape_into(&mut s, &String::from_utf8_lossy(line));
        s.push_str("\",\"stream\":\"");
        s.push_str(stream);
        s.push_str("\",\"time\":\"");
        s.push_str(&rfc3339_now());
        s.push_str("\"}\n");
        if self.max_size > 0 && self.size > 0 && self.size + s.len() as u64 > self.max_size {
            self.rotate();
        }
        if let Some(f) = &mut self.file {
            if f.write_all(s.as_bytes()).is_ok() {
                self.size += s.len() as u64;
            }
        }
    }

    fn rotate(&mut self) {
        let Some(path) = self.path.clone() else {
            return;
        };
        let name = |i: u32| {
            let mut p = path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        if self.max_files <= 1 {
            let _ = std::fs::remove_file(&path);
        } else {
            let _ = std::fs::remove_file(name(self.max_files - 1));
            for i in (1..self.max_files - 1).rev() {
                let _ = std::fs::rename(name(i), name(i + 1));
            }
            let _ = std::fs::rename(&path, name(1));
        }
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .ok();
        self.size = 0;
    }
}

pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// Now, as RFC 3339 with nanoseconds in UTC.
pub fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_escape_and_rotate() {
        let d = std::env::temp_dir().join(format!("berth-monitor-log-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("c-json.log");
        let mut log = JsonLog::open(&Some(p.clone()), 300, 3);
        log.write("stdout", b"hello \"x\"\npart");
        log.write("stdout", b"ial\n");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("{\"log\":\"hello \\\"x\\\"\\n\",\"stream\":\"stdout\",\"time\":\"")
        );
        assert!(text.contains("{\"log\":\"partial\\n\""));
        for _ in 0..20 {
            log.write("stderr", b"0123456789012345678901234567890123456789\n");
        }
        assert!(d.join("c-json.log.1").exists());
        assert!(d.join("c-json.log.2").exists());
        assert!(!d.join("c-json.log.3").exists());
        assert!(std::fs::metadata(&p).unwrap().len() <= 300);
        std::fs::remove_dir_all(&d).unwrap();
        let t = rfc3339_now();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }
}

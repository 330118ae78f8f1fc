//! OCI lifecycle hooks: each runs with the container's state JSON on stdin,
//! its own args and env, and an optional timeout.

use crate::error::{Result, RuntimeError};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn run_hooks(hooks: Option<&Vec<Hook>>, state: &serde_json::Value) -> Result<()> {
    let Some(hooks) = hooks else { return Ok(()) };
    let input = state.to_string();
    for h in hooks {
        run_hook(h, &input)?;
    }
    Ok(())
}

fn run_hook(h: &Hook, input: &str) -> Result<()> {
    let err = |msg: String| RuntimeError::Hook {
        path: h.path().clone(),
        msg,
    };
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| err(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let status = if deadline.is_none() {
        child.wait().map_err(|e| err(e.to_string()))?
    } else {
        loop {
            match child.try_wait().map_err(|e| err(e.to_string()))? {
                Some(s) => break s,
                None => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(err(format!(
                            "timed out after {}s",
                            h.timeout().unwrap_or_default()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(err(format!("failed: {status}")))
    }
}

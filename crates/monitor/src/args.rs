//! The monitor's command line: `--key value` pairs, written by the engine.

use std::path::PathBuf;

pub struct Args {
    pub id: String,
    /// The container's run directory (sockets, pid, exit files).
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    pub log: Option<PathBuf>,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub tty: bool,
    pub stdin: bool,
    /// Docker's StdinOnce (`run -i`, `start -ai`): the container's stdin
    /// closes when the attached client's input ends.
    pub stdin_once: bool,
    /// `start -a`: answer once the container is created, and start it only
    /// when the first client has attached, so no output is missed.
    pub attach_first: bool,
    pub restart: String,
    /// The health check (Docker's Test array), empty for none.
    pub health_test: Vec<String>,
    pub health_interval_ns: u64,
    pub health_timeout_ns: u64,
    pub health_start_period_ns: u64,
    pub health_retries: u32,
    /// The check as a runtime-spec process (`exec --process`), if given.
    pub health_process: Option<PathBuf>,
    /// `--health-event-arg`s: the command run with a new health status.
    pub health_event_command: Vec<String>,
    /// `--forward`s: published ports this monitor answers in user space
    /// (the host's IPv6 loopback), for as long as it serves the container.
    pub forwards: Vec<berth_forward::Forward>,
    /// Run when the container is finally down (after the `--` that ends
    /// the monitor's own options).
    pub exit_command: Vec<String>,
}

impl Args {
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut a = Args {
            id: String::new(),
            dir: PathBuf::new(),
            bundle: PathBuf::new(),
            runtime: PathBuf::from("berth-runtime"),
            runtime_root: PathBuf::new(),
            log: None,
            log_max_size: 20 * 1000 * 1000,
            log_max_files: 5,
            tty: false,
            stdin: false,
            stdin_once: false,
            attach_first: false,
            restart: "no".into(),
            health_test: Vec::new(),
            health_interval_ns: 30_000_000_000,
            health_timeout_ns: 30_000_000_000,
            health_start_period_ns: 0,
            health_retries: 3,
            health_process: None,
            health_event_command: Vec::new(),
            forwards: Vec::new(),
            exit_command: Vec::new(),
        };
        while let Some(k) = it.next() {
            if k == "--" {
                a.exit_command = it.by_ref().collect();
                break;
            }
            match k.as_str() {
                "--tty" => a.tty = true,
                "--stdin" => a.stdin = true,
                "--stdin-once" => a.stdin_once = true,
                "--attach-first" => a.attach_first = true,
                _ => {
                    let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
                    match k.as_str() {
                        "--id" => a.id = v,
                        "--dir" => a.dir = v.into(),
                        "--bundle" => a.bundle = v.into(),
                        "--runtime" => a.runtime = v.into(),
                        "--runtime-root" => a.runtime_root = v.into(),
                        "--log" => a.log = Some(v.into()),
                        "--log-max-size" => {
                            a.log_max_size = v.parse().map_err(|_| format!("bad {k} {v:?}"))?
                        }
                        "--log-max-files" => {
                            a.log_max_files = v.parse().map_err(|_| format!("bad {k} {v:?}"))?
                        }
                        "--restart" => a.restart = v,
                        "--health-test" => a.health_test.push(v),
                        "--health-event-arg" => a.health_event_command.push(v),
                        "--health-process" => a.health_process = Some(v.into()),
                        "--forward" => a.forwards.push(v.parse().map_err(|e| format!("{e}"))?),
                        "--health-interval" => {
                            a.health_interval_ns =
                                v.parse().map_err(|_| format!("bad {k} {v:?}"))?
                        }
                        "--health-timeout" => {
                            a.health_timeout_ns = v.parse().map_err(|_| format!("bad {k} {v:?}"))?
                        }
                        "--health-start-period" => {
                            a.health_start_period_ns =
                                v.parse().map_err(|_| format!("bad {k} {v:?}"))?
                        }
                        "--health-retries" => {
                            a.health_retries = v.parse().map_err(|_| format!("bad {k} {v:?}"))?
                        }
                        _ => return Err(format!("unknown option {k}")),
                    }
                }
            }
        }
        if a.id.is_empty() || a.dir.as_os_str().is_empty() || a.bundle.as_os_str().is_empty() {
            return Err("--id, --dir and --bundle are required".into());
        }
        if a.runtime_root.as_os_str().is_empty() {
            a.runtime_root = a.dir.join("runtime");
        }
        Ok(a)
    }
}

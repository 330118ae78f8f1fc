use berth_runtime::{ExecOptions, Result, Runtime, RuntimeError};
use clap::Args;
use oci_spec::runtime::{Capabilities, Capability, Process};
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Args)]
pub struct ExecArgs {
    /// A process.json (runtime-spec process) describing what to run
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Unix socket to send the pty master to
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short, long)]
    env: Vec<String>,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    tty: bool,
    /// UID[:GID] to run as
    #[arg(short, long)]
    user: Option<String>,
    /// Additional group IDs
    #[arg(short = 'g', long)]
    additional_gids: Vec<u32>,
    /// Return as soon as the process runs
    #[arg(short, long)]
    detach: bool,
    /// Write the process's pid here
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Add a capability (CAP_NAME)
    #[arg(short, long)]
    cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long)]
    no_new_privs: bool,
    /// Pass this many extra descriptors (from 3)
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Exec even in a paused container (the process stays frozen until it
    /// is resumed)
    #[arg(long)]
    ignore_paused: bool,
    /// Accepted for runc compatibility; ignored
    #[arg(long, hide = true)]
    process_label: Option<String>,
    /// Accepted for runc compatibility; ignored
    #[arg(long, hide = true)]
    apparmor: Option<String>,
    /// The container's ID, then the command and its arguments (unless
    /// --process). As runc's, flag parsing stops at the ID: all that
    /// follows is the command's (`exec ID ls -e` is not --env).
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, value_name = "ID")]
    id_and_command: Vec<String>,
}

impl ExecArgs {
    fn id(&self) -> &str {
        self.id_and_command.first().map_or("", String::as_str)
    }

    fn command(&self) -> &[String] {
        self.id_and_command.get(1..).unwrap_or_default()
    }
}

fn bad(msg: String) -> RuntimeError {
    RuntimeError::Other(msg)
}

pub fn run(rt: &Runtime, a: ExecArgs) -> Result<i32> {
    let mut process: Process = match &a.process {
        Some(p) => {
            let text = std::fs::read(p).map_err(|e| bad(format!("read {}: {e}", p.display())))?;
            let mut process = berth_runtime::spec::parse_process(&text, p)?;
            // What the process does not say comes from the container's
            // (as runc's exec): capabilities, no_new_privs, rlimits.
            let (_, st) = rt.load(a.id())?;
            if let Some(init) = st.spec.process() {
                if process.capabilities().is_none() {
                    process.set_capabilities(init.capabilities().clone());
                }
                if process.no_new_privileges().is_none() {
                    process.set_no_new_privileges(init.no_new_privileges());
                }
                if process.rlimits().as_ref().is_none_or(|r| r.is_empty()) {
                    process.set_rlimits(init.rlimits().clone());
                }
            }
            process
        }
        None => {
            if a.command().is_empty() {
                return Err(bad("exec: give a command or --process".into()));
            }
            let (_, st) = rt.load(a.id())?;
            let mut p = st.spec.process().clone().unwrap_or_default();
            p.set_args(Some(a.command().to_vec()));
            p.set_terminal(Some(a.tty));
            p
        }
    };
    if a.process.is_none() {
        if let Some(c) = &a.cwd {
            process.set_cwd(c.clone());
        }
        let mut env = process.env().clone().unwrap_or_default();
        for kv in &a.env {
            let key = kv.split('=').next().unwrap_or(kv);
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        process.set_env(Some(env));
        if let Some(u) = &a.user {
            let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
            let mut user = process.user().clone();
            user.set_uid(
                uid.parse()
                    .map_err(|_| bad(format!("--user {u:?}: not UID[:GID]")))?,
            );
            user.set_gid(
                gid.parse()
                    .map_err(|_| bad(format!("--user {u:?}: not UID[:GID]")))?,
            );
            process.set_user(user);
        }
        if !a.additional_gids.is_empty() {
            let mut user = process.user().clone();
            user.set_additional_gids(Some(a.additional_gids.clone()));
            process.set_user(user);
        }
        if a.no_new_privs {
            process.set_no_new_privileges(Some(true));
        }
        if !a.cap.is_empty() {
            let mut caps = process.capabilities().clone().unwrap_or_default();
            let mut add: Capabilities = Capabilities::new();
            for c in &a.cap {
                let name = c.trim_start_matches("CAP_");
                add.insert(
                    Capability::from_str(name)
                        .map_err(|_| bad(format!("--cap {c:?}: unknown capability")))?,
                );
            }
            let merge = |set: &Option<Capabilities>| -> Option<Capabilities> {
                let mut s = set.clone().unwrap_or_default();
                s.extend(add.iter().copied());
                Some(s)
            };
            // As runc's: bounding, effective and permitted, not inheritable;
            // ambient only if the process has an inheritable set (an
            // ambient capability must be inheritable too, so those added
            // here are only ambient if already inheritable).
            caps.set_bounding(merge(caps.bounding()));
            caps.set_effective(merge(caps.effective()));
            caps.set_permitted(merge(caps.permitted()));
            if caps.inheritable().is_some() {
                caps.set_ambient(merge(caps.ambient()));
            }
            process.set_capabilities(Some(caps));
        }
    }
    let id = a.id().to_owned();
    rt.exec(
        &id,
        &ExecOptions {
            process,
            detach: a.detach,
            pid_file: a.pid_file,
            console_socket: a.console_socket,
            preserve_fds: a.preserve_fds,
            ignore_paused: a.ignore_paused,
        },
    )
}

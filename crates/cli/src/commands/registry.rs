//! `pull`, `push`, `login`, `logout`, and the pull of `run`/`create --pull`.
//!
//! Progress as Docker shows it: on a terminal one line per layer redrawn in place with a
//! progress bar; otherwise a plain line each time a layer's state changes; nothing
//! with `-q`.

use berth_engine::registry::{self as reg, ProgressSink};
use berth_engine::units::progress_bar;
use berth_engine::{Engine, EngineError, Progress, RegistryFlags, Result};
use clap::Args;
use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

// `--tls-verify[=BOOL]` (podman's flag): `false` allows plain HTTP and unverified TLS.
#[derive(Args, Clone, Default)]
pub struct TlsFlags {
    /// Require HTTPS and verify certificates (--tls-verify=false allows plain HTTP)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    tls_verify: Option<bool>,
}

#[derive(Args)]
pub struct PullArgs {
    /// Set platform if the image is multi-platform (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Skip image verification (accepted for compatibility)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    disable_content_trust: Option<bool>,
    #[command(flatten)]
    tls: TlsFlags,
    /// NAME[:TAG|@DIGEST]
    name: String,
}

#[derive(Args)]
pub struct PushArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    /// Skip image signing (accepted for compatibility)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    disable_content_trust: Option<bool>,
    #[command(flatten)]
    tls: TlsFlags,
    /// NAME[:TAG]
    name: String,
}

#[derive(Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    username: Option<String>,
    /// Password
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    tls: TlsFlags,
    /// The registry (default Docker Hub)
    server: Option<String>,
}

#[derive(Args)]
pub struct LogoutArgs {
    /// The registry (default Docker Hub)
    server: Option<String>,
}

/// Where progress goes and how it looks.
pub struct Renderer {
    to_stderr: bool,
    tty: bool,
    quiet: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    order: Vec<String>,
    lines: HashMap<String, String>,
    status: HashMap<String, String>,
    /// Layer lines drawn so far (the cursor is below them).
    drawn: usize,
    last_draw: Option<Instant>,
}

impl Renderer {
    pub fn new(to_stderr: bool, quiet: bool) -> Renderer {
        let tty = if to_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        Renderer {
            to_stderr,
            tty,
            quiet,
            state: Mutex::new(State::default()),
        }
    }

    fn emit(&self, s: &str) {
        if self.to_stderr {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(s.as_bytes());
            let _ = e.flush();
        } else {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(s.as_bytes());
            let _ = o.flush();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Prints a whole line (after the layer block, which ends).
    pub fn line(&self, s: &str) {
        if self.quiet {
            return;
        }
        let mut st = self.lock();
        if self.tty && !st.order.is_empty() {
            self.redraw(&mut st, true);
        }
        st.order.clear();
        st.lines.clear();
        st.drawn = 0;
        self.emit(&format!("{s}\n"));
    }

    pub fn event(&self, p: Progress<'_>) {
        if self.quiet {
            return;
        }
        match p {
            Progress::Line(s) => self.line(s),
            Progress::Layer {
                id,
                status,
                current,
                total,
            } => {
                let mut st = self.lock();
                if !st.lines.contains_key(id) {
                    st.order.push(id.to_owned());
                }
                let changed = st.status.get(id).map(String::as_str) != Some(status);
                st.status.insert(id.to_owned(), status.to_owned());
                let bar_status = matches!(status, "Downloading" | "Extracting" | "Pushing");
                // As Docker's CLI, without a terminal a line with a
                // progress bar is not printed at all.
                if bar_status && total > 0 && !self.tty {
                    return;
                }
                let text = if bar_status && self.tty {
                    format!("{id}: {status} {}", progress_bar(current, total))
                } else {
                    format!("{id}: {status}")
                };
                st.lines.insert(id.to_owned(), text.clone());
                if self.tty {
                    self.redraw(&mut st, changed);
                } else if changed {
                    self.emit(&format!("{text}\n"));
                }
            }
        }
    }

    fn redraw(&self, st: &mut State, force: bool) {
        let now = Instant::now();
        if !force
            && st
                .last_draw
                .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        st.last_draw = Some(now);
        let mut s = String::new();
        if st.drawn > 0 {
            s.push_str(&format!("\x1b[{}A", st.drawn));
        }
        for id in &st.order {
            s.push_str("\x1b[2K");
            s.push_str(st.lines.get(id).map(String::as_str).unwrap_or(""));
            s.push('\n');
        }
        st.drawn = st.order.len();
        self.emit(&s);
    }
}

fn flags(platform: Option<String>, tls: &TlsFlags) -> RegistryFlags {
    RegistryFlags {
        platform,
        tls_verify: tls.tls_verify,
        credentials: None,
    }
}

/// Pulls and prints Docker's closing lines; returns the full reference.
fn pull_with(engine: &Engine, name: &str, f: &RegistryFlags, r: &Renderer) -> Result<String> {
    let sink = |p: Progress<'_>| r.event(p);
    let res = engine.pull(name, f, &sink as ProgressSink<'_>)?;
    r.line(&format!("Digest: {}", res.digest));
    if res.downloaded {
        r.line(&format!(
            "Status: Downloaded newer image for {}",
            res.familiar
        ));
    } else {
        r.line(&format!("Status: Image is up to date for {}", res.familiar));
    }
    Ok(res.reference)
}

pub fn pull(engine: &Engine, a: PullArgs) -> Result<i32> {
    let r = Renderer::new(false, a.quiet);
    let reference = pull_with(engine, &a.name, &flags(a.platform, &a.tls), &r)?;
    println!("{reference}");
    Ok(0)
}

/// `run`/`create --pull`: pulls the image when the policy says so. Progress goes to
/// stderr after Docker's `Unable to find image 'X' locally`, which is printed once the
/// registry has the image (a failure before that is one error line that says it).
pub fn pull_for_run(
    engine: &Engine,
    image: &str,
    policy: Option<&str>,
    platform: Option<&str>,
) -> Result<()> {
    let policy = policy.unwrap_or("missing");
    let present = engine.image_present(image);
    if policy == "never" || (policy == "missing" && present) {
        return Ok(());
    }
    let r = Renderer::new(true, false);
    let announced = std::sync::atomic::AtomicBool::new(false);
    let sink = |p: Progress<'_>| {
        if let Progress::Line(l) = p {
            if l.starts_with("Using default tag") {
                return;
            }
        }
        if !present && !announced.swap(true, std::sync::atomic::Ordering::SeqCst) {
            r.line(&format!("Unable to find image '{image}' locally"));
        }
        r.event(p)
    };
    let f = RegistryFlags {
        platform: platform.map(str::to_owned),
        tls_verify: None,
        credentials: None,
    };
    match engine.pull(image, &f, &sink as ProgressSink<'_>) {
        Ok(res) => {
            r.line(&format!("Digest: {}", res.digest));
            if res.downloaded {
                r.line(&format!(
                    "Status: Downloaded newer image for {}",
                    res.familiar
                ));
            } else {
                r.line(&format!("Status: Image is up to date for {}", res.familiar));
            }
            Ok(())
        }
        Err(e) if !present && !announced.load(std::sync::atomic::Ordering::SeqCst) => {
            Err(EngineError::not_found(
                berth_engine::Object::Image,
                format!("Unable to find image '{image}' locally: {e}"),
            ))
        }
        Err(e) => Err(e),
    }
}

pub fn push(engine: &Engine, a: PushArgs) -> Result<i32> {
    let r = Renderer::new(false, a.quiet);
    let sink = |p: Progress<'_>| r.event(p);
    let res = engine.push(&a.name, &flags(None, &a.tls), &sink as ProgressSink<'_>)?;
    r.line(&format!(
        "{}: digest: {} size: {}",
        res.tag, res.digest, res.size
    ));
    if a.quiet {
        println!("{}", a.name);
    }
    Ok(0)
}

pub fn login(a: LoginArgs) -> Result<i32> {
    let domain = reg::login_domain(a.server.as_deref())?;
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => {
            return Err(EngineError::Invalid(
                "--password and --password-stdin are mutually exclusive".into(),
            ))
        }
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, true) => {
            if a.username.is_none() {
                return Err(EngineError::Invalid(
                    "Must provide --username with --password-stdin".into(),
                ));
            }
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| EngineError::Invalid(format!("read the password from stdin: {e}")))?;
            s.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => {
            return Err(EngineError::Invalid(
                "Cannot perform an interactive login: give --username and --password-stdin".into(),
            ))
        }
    };
    let username = a.username.unwrap_or_default();
    if username.is_empty() || password.is_empty() {
        return Err(EngineError::Invalid(
            "Username and password are both required".into(),
        ));
    }
    let creds = berth_engine::registry::Credentials {
        username,
        secret: password,
    };
    reg::login(&domain, creds, &flags(None, &a.tls))?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(a: LogoutArgs) -> Result<i32> {
    let domain = reg::login_domain(a.server.as_deref())?;
    if reg::logout(&domain)? {
        println!("Removing login credentials for {domain}");
    } else {
        println!("Not logged in to {domain}");
    }
    Ok(0)
}

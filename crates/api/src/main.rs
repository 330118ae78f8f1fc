//! `berth-api`: Docker's Engine API over a socket, for the docker CLI,
//! compose and the SDKs (`berth system service` runs it).
//!
//! Daemonless in podman's way: this process owns no state. Each request
//! opens the engine on the shared root (as a `berth` command does) on a
//! blocking thread; containers live under their monitors, so the server
//! can exit when idle (`--time`) or be killed at any moment and a new one
//! sees everything. It never forks a container from its threads: the
//! engine starts the runtime and monitors as programs.

mod archive;
mod build;
mod containers;
mod exec;
mod hijack;
mod http;
mod images;
mod networks;
mod router;
mod stats;
mod system;
mod volumes;

use berth_engine::EngineOptions;
use http::{error_response, stamp, ApiError, Resp};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the request handlers share: where the engine's root is, and what
/// this server itself keeps track of (activity for the idle exit, attach
/// clients waiting for their container's start).
pub struct Server {
    pub opts: EngineOptions,
    /// Open connections and hijacked streams; the server is idle at 0.
    busy: AtomicUsize,
    last_active: Mutex<Instant>,
    /// Containers that an attach client waits on: their start waits for
    /// that client before the container runs, so no output is lost. The
    /// flag says a start has counted on the client (it must then connect to
    /// the monitor even if it is gone, or the monitor waits for nobody).
    pub pending_attach: Mutex<HashMap<String, bool>>,
}

/// Counts as activity while alive (a connection, a hijacked stream).
pub struct Busy(Arc<Server>);

impl Busy {
    pub fn new(s: &Arc<Server>) -> Busy {
        s.busy.fetch_add(1, Ordering::SeqCst);
        Busy(s.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.last_active.lock() {
            *t = Instant::now();
        }
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    /// Runs `f` with an engine opened on the root, on a blocking thread.
    pub async fn engine<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&berth_engine::Engine) -> Result<T, ApiError> + Send + 'static,
    {
        let opts = self.opts.clone();
        tokio::task::spawn_blocking(move || {
            let e = berth_engine::Engine::open(&opts)?;
            f(&e)
        })
        .await
        .map_err(|e| ApiError::internal(format!("request task failed: {e}")))?
    }
}

struct Args {
    opts: EngineOptions,
    idle: Option<Duration>,
    uri: Option<String>,
}

const USAGE: &str = "usage: berth-api [--root DIR] [--storage-driver NAME] [--time SECONDS] [unix:///PATH | tcp://127.0.0.1:PORT]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        opts: EngineOptions {
            root: std::env::var_os("BERTH_ROOT").map(PathBuf::from),
            storage_driver: std::env::var("BERTH_STORAGE_DRIVER").ok(),
        },
        idle: Some(Duration::from_secs(5)),
        uri: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("flag needs an argument: {name}"))
        };
        match flag.as_str() {
            "--root" => a.opts.root = Some(PathBuf::from(value("--root")?)),
            "--storage-driver" => a.opts.storage_driver = Some(value("--storage-driver")?),
            "-t" | "--time" => {
                let v = value("--time")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("invalid argument {v:?} for \"-t, --time\" flag"))?;
                a.idle = (secs > 0).then(|| Duration::from_secs(secs));
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            f if f.starts_with('-') => return Err(format!("unknown flag: {f}")),
            _ if a.uri.is_none() => a.uri = Some(arg),
            _ => return Err(format!("accepts at most 1 arg(s), received more: {arg}")),
        }
    }
    Ok(a)
}

/// The run directory of the root (`ROOT/run`, or /run/berth).
fn run_dir(opts: &EngineOptions) -> PathBuf {
    match &opts.root {
        Some(r) => r.join("run"),
        None => PathBuf::from("/run/berth"),
    }
}

enum Listener {
    Unix(tokio::net::UnixListener, Option<PathBuf>),
    Tcp(tokio::net::TcpListener),
}

fn bind(a: &Args) -> Result<Listener, String> {
    if let Some(fd) = berth_network::activation::listen_fds().into_iter().next() {
        // Socket activation: the service manager made and owns the path.
        let std_unix = std::os::unix::net::UnixListener::from(fd);
        let is_unix = std_unix.local_addr().is_ok();
        if is_unix {
            std_unix
                .set_nonblocking(true)
                .map_err(|e| format!("socket activation: {e}"))?;
            let l = tokio::net::UnixListener::from_std(std_unix)
                .map_err(|e| format!("socket activation: {e}"))?;
            return Ok(Listener::Unix(l, None));
        }
        let fd = std::os::fd::OwnedFd::from(std_unix);
        let tcp = std::net::TcpListener::from(fd);
        tcp.set_nonblocking(true)
            .map_err(|e| format!("socket activation: {e}"))?;
        let l = tokio::net::TcpListener::from_std(tcp)
            .map_err(|e| format!("socket activation: {e}"))?;
        return Ok(Listener::Tcp(l));
    }
    let uri = a
        .uri
        .clone()
        .unwrap_or_else(|| format!("unix://{}", run_dir(&a.opts).join("docker.sock").display()));
    if let Some(path) = uri.strip_prefix("unix://") {
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        // A socket left by a server that was killed: nobody answers on it.
        if std::os::unix::net::UnixStream::connect(&path).is_err() {
            let _ = std::fs::remove_file(&path);
        }
        let std_l = std::os::unix::net::UnixListener::bind(&path)
            .map_err(|e| format!("listen on {}: {e}", path.display()))?;
        restrict_socket(&path)?;
        std_l
            .set_nonblocking(true)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let l = tokio::net::UnixListener::from_std(std_l)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(Listener::Unix(l, Some(path)));
    }
    if let Some(addr) = uri.strip_prefix("tcp://") {
        let sa: std::net::SocketAddr = addr
            .parse()
            .map_err(|_| format!("invalid address {addr:?}: want tcp://IP:PORT"))?;
        // Without TLS the API is root on this machine for whoever reaches
        // it: loopback only, as Docker warns and podman refuses.
        if !sa.ip().is_loopback() {
            return Err(format!(
                "refusing to listen on {sa} without TLS: only a loopback address is allowed"
            ));
        }
        let std_l = std::net::TcpListener::bind(sa).map_err(|e| format!("listen on {sa}: {e}"))?;
        std_l
            .set_nonblocking(true)
            .map_err(|e| format!("{sa}: {e}"))?;
        let l = tokio::net::TcpListener::from_std(std_l).map_err(|e| format!("{sa}: {e}"))?;
        return Ok(Listener::Tcp(l));
    }
    Err(format!(
        "unsupported address {uri:?}: want unix:///PATH or tcp://127.0.0.1:PORT"
    ))
}

/// Mode 0660, owned by root and the `berth` group when it exists (Docker's
/// docker.sock with its docker group).
fn restrict_socket(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Ok(Some(g)) = nix::unistd::Group::from_name("berth") {
        nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(0)), Some(g.gid))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

async fn handle(
    server: Arc<Server>,
    req: Request<Incoming>,
) -> Result<Resp, std::convert::Infallible> {
    let mut resp = match router::route(server, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    stamp(&mut resp);
    Ok(resp)
}

fn serve_conn<IO>(server: &Arc<Server>, io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let busy = Busy::new(server);
    let s = server.clone();
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req| handle(s.clone(), req));
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), svc)
            .with_upgrades();
        let _ = conn.await;
        drop(busy);
    });
}

/// This process's children that have exited and nobody waits for.
fn zombie_children() -> HashSet<i32> {
    let me = std::process::id() as i32;
    let mut out = HashSet::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(i) = stat.rfind(')') else { continue };
        let mut f = stat[i + 1..].split_whitespace();
        if f.next() == Some("Z") && f.next().and_then(|p| p.parse().ok()) == Some(me) {
            out.insert(pid);
        }
    }
    out
}

/// Reaps the monitors, DNS servers and runtimes the engine started (they
/// outlive the request that started them; in the one-shot CLI init
/// inherits them, here this process must wait for them). Only children
/// already zombies at the previous tick: a request thread that waits for
/// its own child gets it first.
fn reap_zombies(seen: &mut HashSet<i32>) {
    let now = zombie_children();
    for pid in now.intersection(seen) {
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(*pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }
    *seen = now;
}

async fn run(args: Args) -> Result<(), String> {
    let listener = bind(&args)?;
    let server = Arc::new(Server {
        opts: args.opts.clone(),
        busy: AtomicUsize::new(0),
        last_active: Mutex::new(Instant::now()),
        pending_attach: Mutex::new(HashMap::new()),
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("signal handler: {e}"))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("signal handler: {e}"))?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut zombies = HashSet::new();
    // The socket file this server made, by identity: a newer server may
    // have bound the same path since, and its socket is not ours to remove.
    let socket_path = match &listener {
        Listener::Unix(_, Some(p)) => std::fs::metadata(p).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            (p.clone(), m.dev(), m.ino())
        }),
        _ => None,
    };
    loop {
        tokio::select! {
            r = async {
                match &listener {
                    Listener::Unix(l, _) => l.accept().await.map(|(s, _)| serve_conn(&server, s)),
                    Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                        let _ = s.set_nodelay(true);
                        serve_conn(&server, s)
                    }),
                }
            } => {
                if let Err(e) = r {
                    eprintln!("berth-api: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick.tick() => {
                reap_zombies(&mut zombies);
                if let Some(idle) = args.idle {
                    let quiet = server.busy.load(Ordering::SeqCst) == 0
                        && server.last_active.lock().map(|t| t.elapsed() >= idle).unwrap_or(false);
                    if quiet {
                        break;
                    }
                }
            }
        }
    }
    // Stop taking connections; let the ones in flight (streams included)
    // finish for a while, as a clean shutdown of a service should.
    drop(listener);
    if let Some((p, dev, ino)) = socket_path {
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata(&p).is_ok_and(|m| m.dev() == dev && m.ino() == ino) {
            let _ = std::fs::remove_file(p);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.busy.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::exit(125);
        }
    };
    // One thread for all I/O; the engine's work runs on the blocking pool.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(128)
        .thread_keep_alive(Duration::from_secs(2))
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let res = rt.block_on(run(args));
    // A blocking reader still waiting on a container (a `logs -f` whose
    // client left) must not keep the process: it owns nothing.
    rt.shutdown_timeout(Duration::from_secs(1));
    if let Err(e) = res {
        eprintln!("Error: {e}");
        std::process::exit(1);
    }
}

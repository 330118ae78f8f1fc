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
mod sys;
mod system;
mod tls;
mod volumes;

use berth_engine::EngineOptions;
use http::{error_response, stamp, ApiError, Resp};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
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
    /// `-G, --group` (dockerd's): None is `berth` when that group exists.
    group: Option<String>,
    tls: tls::TlsArgs,
}

const USAGE: &str = "usage: berth-api [--root DIR] [--storage-driver NAME] [--time SECONDS] [-G GROUP] [--tlsverify --tlscacert FILE --tlscert FILE --tlskey FILE] [unix:///PATH | tcp://IP:PORT]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        opts: EngineOptions {
            root: std::env::var_os("BERTH_ROOT").map(PathBuf::from),
            run: std::env::var_os("BERTH_RUNROOT").map(PathBuf::from),
            storage_driver: std::env::var("BERTH_STORAGE_DRIVER").ok(),
        },
        idle: Some(Duration::from_secs(5)),
        uri: None,
        group: None,
        tls: tls::TlsArgs::default(),
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
            "-G" | "--group" => a.group = Some(value("--group")?),
            "--tlsverify" => {
                a.tls.verify = match inline.as_deref() {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(v) => {
                        return Err(format!(
                            "invalid argument {v:?} for \"--tlsverify\" flag: want true or false"
                        ))
                    }
                }
            }
            "--tlscacert" => a.tls.ca = Some(PathBuf::from(value("--tlscacert")?)),
            "--tlscert" => a.tls.cert = Some(PathBuf::from(value("--tlscert")?)),
            "--tlskey" => a.tls.key = Some(PathBuf::from(value("--tlskey")?)),
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
    if let Some(r) = &opts.run {
        return r.clone();
    }
    match &opts.root {
        Some(r) => r.join("run"),
        None => PathBuf::from("/run/berth"),
    }
}

enum Listener {
    Unix(tokio::net::UnixListener, Option<PathBuf>),
    /// With TLS when configured.
    Tcp(tokio::net::TcpListener, Option<tokio_rustls::TlsAcceptor>),
}

/// The message for TLS flags on a unix socket.
fn tls_on_unix(what: &str) -> String {
    format!(
        "--tlsverify and the TLS files are for a tcp:// address, not {what}: \
         a unix socket's users are who may open its file (see --group)"
    )
}

fn bind(a: &Args) -> Result<Listener, String> {
    if let Some(fd) = berth_network::activation::listen_fds().into_iter().next() {
        let tls = tls::config(&a.tls)?;
        // Socket activation: the service manager made and owns the path.
        let std_unix = std::os::unix::net::UnixListener::from(fd);
        let is_unix = std_unix.local_addr().is_ok();
        if is_unix {
            if a.tls.any() {
                return Err(tls_on_unix("the activated unix socket"));
            }
            // berth.socket's path is in the run directory: its group
            // (SocketGroup=) is let through the directories as with -G.
            let path = std_unix
                .local_addr()
                .ok()
                .and_then(|l| l.as_pathname().map(std::path::Path::to_path_buf));
            if let Some(p) = path {
                let dirs = berth_dirs(&p, &a.opts);
                if !dirs.is_empty() {
                    use std::os::unix::fs::MetadataExt;
                    let gid = std::fs::metadata(&p)
                        .map_err(|e| format!("{}: {e}", p.display()))?
                        .gid();
                    let gid = (gid != 0).then(|| nix::unistd::Gid::from_raw(gid));
                    open_dirs(&dirs, gid)?;
                }
            }
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
        return Ok(Listener::Tcp(l, tls.map(tokio_rustls::TlsAcceptor::from)));
    }
    let uri = a
        .uri
        .clone()
        .unwrap_or_else(|| format!("unix://{}", run_dir(&a.opts).join("docker.sock").display()));
    if let Some(path) = uri.strip_prefix("unix://") {
        if a.tls.any() {
            return Err(tls_on_unix(&uri));
        }
        let gid = socket_group(a.group.as_deref())?;
        let path = std::path::absolute(path).map_err(|e| format!("{path}: {e}"))?;
        let berths = berth_dirs(&path, &a.opts);
        if let Some(dir) = path.parent() {
            if berths.is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            // The root and its run directory are made private, as the
            // engine makes them.
            for d in berths.iter().rev() {
                make_private(d).map_err(|e| format!("{}: {e}", d.display()))?;
            }
        }
        // A socket left by a server that was killed: nobody answers on it.
        if std::os::unix::net::UnixStream::connect(&path).is_err() {
            let _ = std::fs::remove_file(&path);
        }
        let std_l = std::os::unix::net::UnixListener::bind(&path)
            .map_err(|e| format!("listen on {}: {e}", path.display()))?;
        // Nothing is left behind when the socket cannot be given out.
        if let Err(e) = restrict_socket(&path, gid).and_then(|()| open_dirs(&berths, gid)) {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
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
        // it: loopback only, as Docker warns and podman refuses. With TLS
        // only holders of a certificate of the CA get in: any address.
        let tls = tls::config(&a.tls)?;
        if tls.is_none() && !sa.ip().is_loopback() {
            return Err(format!(
                "refusing to listen on {sa} without TLS (--tlsverify): only a loopback address is allowed"
            ));
        }
        let std_l = std::net::TcpListener::bind(sa).map_err(|e| format!("listen on {sa}: {e}"))?;
        std_l
            .set_nonblocking(true)
            .map_err(|e| format!("{sa}: {e}"))?;
        let l = tokio::net::TcpListener::from_std(std_l).map_err(|e| format!("{sa}: {e}"))?;
        return Ok(Listener::Tcp(l, tls.map(tokio_rustls::TlsAcceptor::from)));
    }
    Err(format!(
        "unsupported address {uri:?}: want unix:///PATH or tcp://127.0.0.1:PORT"
    ))
}

/// The group of the unix socket, as dockerd's `-G, --group`: a group
/// named (or numbered) with `--group` must exist; by default `berth` when
/// it exists; none with `--group ""`.
fn socket_group(name: Option<&str>) -> Result<Option<nix::unistd::Gid>, String> {
    use nix::unistd::{Gid, Group};
    match name {
        None => Ok(Group::from_name("berth").ok().flatten().map(|g| g.gid)),
        Some("") => Ok(None),
        Some(n) => match Group::from_name(n) {
            Ok(Some(g)) => Ok(Some(g.gid)),
            _ => n
                .parse::<u32>()
                .map(|id| Some(Gid::from_raw(id)))
                .map_err(|_| format!("group {n} not found")),
        },
    }
}

/// The directories of berth's own on the socket's path: the run directory
/// when the socket is in it (the default socket), and the root too when
/// the run directory is ROOT/run. Innermost first.
fn berth_dirs(socket: &std::path::Path, opts: &EngineOptions) -> Vec<PathBuf> {
    let Ok(run) = std::path::absolute(run_dir(opts)) else {
        return Vec::new();
    };
    if socket.parent() != Some(run.as_path()) {
        return Vec::new();
    }
    let mut out = vec![run.clone()];
    if let Some(root) = opts.root.as_ref().and_then(|r| std::path::absolute(r).ok()) {
        if run.parent() == Some(root.as_path()) {
            out.push(root);
        }
    }
    out
}

/// A directory made 0700 if missing (its parents as usual).
fn make_private(d: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if d.is_dir() {
        return Ok(());
    }
    if let Some(p) = d.parent() {
        std::fs::create_dir_all(p)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(d) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// Mode 0660, owned by root and the socket's group when there is one
/// (Docker's docker.sock with its docker group).
fn restrict_socket(path: &std::path::Path, gid: Option<nix::unistd::Gid>) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(gid) = gid {
        nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(0)), Some(gid))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The directories and files directly in `dir` for their owner alone (a
/// socket and symlinks aside).
fn close_children(dir: &std::path::Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if (m.is_dir() || m.is_file()) && m.mode() & 0o077 != 0 {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m.mode() & 0o700));
        }
    }
}

/// The group reaches the socket: the directories of berth's own on its
/// path are opened to it for traversal only (0710, group `gid`): nothing in
/// them can be listed, and what they hold stays 0700 and 0600. Without a
/// group they are private (0700) again.
fn open_dirs(dirs: &[PathBuf], gid: Option<nix::unistd::Gid>) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // Outermost first: closing what is in the root must not close the run directory.
    for d in dirs.iter().rev() {
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", d.display());
        match gid {
            Some(gid) => {
                // What an older berth left open in it is closed first.
                close_children(d);
                nix::unistd::chown(d, None, Some(gid)).map_err(|e| err(&e))?;
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o710))
                    .map_err(|e| err(&e))?;
            }
            None => {
                let m = std::fs::metadata(d).map_err(|e| err(&e))?;
                if m.mode() & 0o077 != 0 {
                    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| err(&e))?;
                }
            }
        }
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
        serve_io(s, io).await;
        drop(busy);
    });
}

/// HTTP/1.1 with upgrades (hijacked streams) on one connection.
async fn serve_io<IO>(s: Arc<Server>, io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| handle(s.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    let _ = conn.await;
}

/// A TLS connection: its handshake in its own task, then as any other.
fn serve_tls(server: &Arc<Server>, acceptor: &tokio_rustls::TlsAcceptor, s: tokio::net::TcpStream) {
    let busy = Busy::new(server);
    let srv = server.clone();
    let acceptor = acceptor.clone();
    tokio::spawn(async move {
        if let Some(tls) = tls::accept(&acceptor, s).await {
            serve_io(srv, tls).await;
        }
        drop(busy);
    });
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
    // The end of the activity whose freed memory was last given back.
    let mut trimmed: Option<Instant> = None;
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
                    Listener::Tcp(l, tls) => l.accept().await.map(|(s, _)| {
                        let _ = s.set_nodelay(true);
                        match tls {
                            Some(acceptor) => serve_tls(&server, acceptor, s),
                            None => serve_conn(&server, s),
                        }
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
                // The monitors (and delete-trash) the engine started outlive
                // the request that started them; in the one-shot CLI init
                // inherits them, here this process reaps them. Only them:
                // other children are their request thread's to wait for.
                berth_engine::reap_detached();
                let last = server.last_active.lock().map(|t| *t).ok();
                let quiet_for = match last {
                    Some(t) if server.busy.load(Ordering::SeqCst) == 0 => t.elapsed(),
                    _ => Duration::ZERO,
                };
                if args.idle.is_some_and(|idle| quiet_for >= idle) {
                    break;
                }
                // Quiet since the blocking threads of the last burst have ended (their
                // keep-alive): what they allocated is free, give it back once.
                if quiet_for >= TRIM_AFTER && trimmed != last {
                    sys::release_free_memory();
                    trimmed = last;
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

/// How long a blocking thread waits for more work before it ends.
const THREAD_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// How long the server is quiet before it gives the memory of a burst back: past the
/// blocking threads' keep-alive, so that their thread caches have been freed too.
const TRIM_AFTER: Duration = Duration::from_millis(1500);

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::exit(125);
        }
    };
    sys::limit_arenas();
    // One thread for all I/O; the engine's work runs on the blocking pool.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(128)
        .thread_keep_alive(THREAD_KEEP_ALIVE)
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

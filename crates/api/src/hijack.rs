//! Hijacked connections: `POST /containers/{id}/attach` answers 101 and
//! then relays raw bytes between the client and the container's monitor
//! (whose attach socket already speaks Docker's stdcopy frames, or raw
//! bytes on a terminal).

use crate::http::{self, ApiError, ApiResult, Resp};
use crate::router::Ctx;
use crate::Server;
use berth_engine::containers::State;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The 101 answer, with the stream's type.
pub fn upgraded(tty: bool) -> Resp {
    let mut r = http::empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("tcp"));
    r
}

/// Connects to a monitor's attach socket through its directory's fd (a
/// socket address holds 107 bytes; a run directory under a long root is
/// longer).
fn connect_attach(dir: &std::path::Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    use std::os::fd::AsRawFd;
    let d = std::fs::File::open(dir)?;
    std::os::unix::net::UnixStream::connect(format!("/proc/self/fd/{}/attach.sock", d.as_raw_fd()))
}

/// Removes the container from the pending attaches when the client is
/// gone, connected or not.
struct Pending(Arc<Server>, String);

impl Drop for Pending {
    fn drop(&mut self) {
        if let Ok(mut p) = self.0.pending_attach.lock() {
            p.remove(&self.1);
        }
    }
}

/// Whether the client of a hijacked unix connection has closed it (not
/// only its write side: that is POLLRDHUP, while a socket whose peer is
/// gone reports POLLHUP). A TCP peer's close looks like a half-close:
/// never "gone" here.
fn client_gone(fd: Option<&std::os::fd::OwnedFd>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let Some(fd) = fd else { return false };
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::empty())];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
}

/// Waits until the container's monitor takes the attach client: at once
/// when it runs, after its start when it is created (the start holds the
/// container until this client is there). None when it will not run, or
/// when the client left before a start counted on it (its container then
/// starts as if nobody had attached).
async fn wait_for_monitor(
    server: &Arc<Server>,
    id: &str,
    dir: PathBuf,
    client_fd: Option<std::os::fd::OwnedFd>,
) -> Option<std::os::unix::net::UnixStream> {
    let mut polls = 0u32;
    loop {
        let d = dir.clone();
        if let Ok(Ok(s)) = tokio::task::spawn_blocking(move || connect_attach(&d)).await {
            return Some(s);
        }
        if client_gone(client_fd.as_ref()) {
            let mut p = server.pending_attach.lock().ok()?;
            // A start that already counted on this client has its monitor
            // waiting for a first client: connect (and leave) all the same.
            if p.get(id) != Some(&true) {
                p.remove(id);
                return None;
            }
        }
        let key = id.to_owned();
        let state = server
            .engine(move |e| Ok(e.container(&key).map(|c| c.state)))
            .await
            .ok()?
            .ok()?;
        // Exited and not being started: nothing to attach to.
        if state == State::Exited && polls > 20 {
            return None;
        }
        polls = polls.saturating_add(1);
        tokio::time::sleep(Duration::from_millis(if polls < 400 { 5 } else { 100 })).await;
    }
}

/// The client of an upgraded connection, and (for a unix socket) a copy of
/// its fd to notice a client that leaves while nothing is relayed yet.
trait ClientIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> ClientIo for T {}

fn client_of(up: hyper::upgrade::Upgraded) -> (Box<dyn ClientIo>, Option<std::os::fd::OwnedFd>) {
    use std::os::fd::AsFd;
    match up.downcast::<TokioIo<tokio::net::UnixStream>>() {
        Ok(parts) => {
            let stream = parts.io.into_inner();
            let fd = stream.as_fd().try_clone_to_owned().ok();
            let (r, w) = stream.into_split();
            // Bytes hyper read past the request come first.
            let r = std::io::Cursor::new(parts.read_buf).chain(r);
            (Box::new(tokio::io::join(r, w)), fd)
        }
        Err(up) => (Box::new(TokioIo::new(up)), None),
    }
}

/// `attach?logs=1`: the container's log so far, framed as the stream is
/// (stdcopy frames without a terminal) and filtered by `stdout`/`stderr`,
/// written to the client before the live output, as dockerd does.
async fn replay_logs<C>(
    server: &Arc<Server>,
    id: &str,
    tty: bool,
    (stdout, stderr): (bool, bool),
    client: &mut C,
) -> bool
where
    C: tokio::io::AsyncWrite + Unpin,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
    let key = id.to_owned();
    let work = server.engine(move |e| {
        let (mut out, mut err) = crate::containers::log_writers(tx, stdout, stderr, tty);
        // A container without a log (driver none) has nothing to replay.
        let _ = e.logs(
            &key,
            &berth_engine::LogOptions::default(),
            &mut out,
            &mut err,
        );
        Ok(())
    });
    let forward = async {
        let mut ok = true;
        while let Some(b) = rx.recv().await {
            // A client gone: keep draining so the reader ends.
            if ok && client.write_all(&b).await.is_err() {
                ok = false;
            }
        }
        ok && client.flush().await.is_ok()
    };
    let (_, ok) = tokio::join!(work, forward);
    ok
}

/// `POST /containers/{id}/attach?stream=1&logs=&stdin=&stdout=&stderr=`.
pub async fn attach(ctx: &mut Ctx, id: &str) -> ApiResult {
    let key = id.to_owned();
    let (c, dir) = ctx
        .server
        .engine(move |e| {
            let c = e.container(&key)?;
            let dir = e.run_dir().join("containers").join(c.id.as_str());
            Ok((c, dir))
        })
        .await?;
    if ctx.req.headers().get(UPGRADE).is_none() {
        return Err(ApiError::bad_request(
            "attach needs a hijacked connection: send 'Connection: Upgrade' and 'Upgrade: tcp'",
        ));
    }
    let want_stdin = ctx.query.bool("stdin");
    let logs = ctx.query.bool("logs");
    let stream = ctx.query.bool("stream");
    let outputs = (ctx.query.bool("stdout"), ctx.query.bool("stderr"));
    let tty = c.config.tty;
    let id = c.id.as_str().to_owned();
    let pending = if stream && c.state != State::Running {
        if let Ok(mut p) = ctx.server.pending_attach.lock() {
            p.insert(id.clone(), false);
        }
        Some(Pending(ctx.server.clone(), id.clone()))
    } else {
        None
    };
    let on_upgrade = hyper::upgrade::on(&mut ctx.req);
    let server = ctx.server.clone();
    tokio::spawn(async move {
        let _busy = crate::Busy::new(&server);
        let Ok(up) = on_upgrade.await else {
            return;
        };
        let (mut client, client_fd) = client_of(up);
        if logs && !replay_logs(&server, &id, tty, outputs, &mut client).await {
            return;
        }
        if !stream {
            let _ = client.shutdown().await;
            return;
        }
        let Some(std_sock) = wait_for_monitor(&server, &id, dir, client_fd).await else {
            let _ = client.shutdown().await;
            return;
        };
        drop(pending);
        if std_sock.set_nonblocking(true).is_err() {
            return;
        }
        let Ok(sock) = tokio::net::UnixStream::from_std(std_sock) else {
            return;
        };
        relay(client, sock, want_stdin).await;
    });
    Ok(upgraded(tty))
}

/// Copies the container's output to the client until the monitor hangs
/// up, and (with stdin) the client's input to the container; the client's
/// half-close ends only the input.
async fn relay<C>(client: C, sock: tokio::net::UnixStream, stdin: bool)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let (mut from_monitor, mut to_monitor) = sock.into_split();
    let input = async {
        if !stdin {
            // Still read (and drop) so a client that writes is not stuck,
            // and notice when it goes away.
            let mut buf = [0u8; 4096];
            while matches!(from_client.read(&mut buf).await, Ok(n) if n > 0) {}
            return;
        }
        let _ = tokio::io::copy(&mut from_client, &mut to_monitor).await;
        let _ = to_monitor.shutdown().await;
    };
    let output = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from_monitor.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_client.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    let _ = to_client.flush().await;
                }
            }
        }
        let _ = to_client.shutdown().await;
    };
    // Output decides the end: the container's exit closes the stream even
    // while the client keeps its input open.
    tokio::pin!(output);
    tokio::select! {
        _ = &mut output => {}
        _ = async { input.await; std::future::pending::<()>().await } => {}
    }
}

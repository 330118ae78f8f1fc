//! Execs: `POST /containers/{id}/exec`, `POST /exec/{id}/start` (hijacked
//! like attach), `GET /exec/{id}/json`, `POST /exec/{id}/resize`.
//!
//! A started exec lives on a thread of its own (it borrows the engine it
//! was started with): the thread answers "started" or the start's error,
//! then waits for the process and records its exit code, and only then is
//! the client's stream closed, so the `GET /exec/{id}/json` the docker CLI
//! sends right after sees the code (podman's #6893).

use crate::hijack::upgraded;
use crate::http::{self, ApiError, ApiResult};
use crate::router::Ctx;
use berth_engine::{ExecIo, ExecOptions, ExecStartOptions};
use bytes::Bytes;
use hyper::header::UPGRADE;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use std::os::fd::OwnedFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// The body of `POST /containers/{id}/exec`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecCreate {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    tty: bool,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: String,
    user: String,
    privileged: bool,
}

/// The body of `POST /exec/{id}/start`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStart {
    detach: bool,
    /// [rows, columns]
    console_size: Option<Vec<u16>>,
}

pub async fn create(ctx: &mut Ctx, container: &str) -> ApiResult {
    let body: ExecCreate = ctx.json().await?;
    let opts = ExecOptions {
        cmd: body.cmd.unwrap_or_default(),
        env: body.env.unwrap_or_default(),
        workdir: Some(body.working_dir).filter(|w| !w.is_empty()),
        user: Some(body.user).filter(|u| !u.is_empty()),
        tty: body.tty,
        interactive: body.attach_stdin,
        detach: false,
        privileged: body.privileged,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
    };
    let key = container.to_owned();
    let id = ctx
        .server
        .engine(move |e| Ok(e.exec_create(&key, &opts)?))
        .await?;
    Ok(http::json(StatusCode::CREATED, &json!({"Id": id})))
}

pub async fn inspect(ctx: &mut Ctx, id: &str) -> ApiResult {
    let key = id.to_owned();
    let r = ctx
        .server
        .engine(move |e| Ok(e.exec_inspect(&key)?))
        .await?;
    // Not the record itself: its config and process hold the environment.
    http::ok_json(&json!({
        "ID": r.id,
        "Running": r.running,
        "ExitCode": r.exit_code,
        "ProcessConfig": r.process_config,
        "OpenStdin": r.open_stdin,
        "OpenStderr": r.open_stderr,
        "OpenStdout": r.open_stdout,
        "CanRemove": false,
        "ContainerID": r.container_id,
        "DetachKeys": "",
        "Pid": r.pid,
    }))
}

pub async fn resize(ctx: &mut Ctx, id: &str) -> ApiResult {
    let (rows, cols) = size(ctx)?;
    let key = id.to_owned();
    ctx.server
        .engine(move |e| Ok(e.exec_resize(&key, rows, cols)?))
        .await?;
    Ok(http::text(StatusCode::OK, "text/plain; charset=utf-8", ""))
}

/// `h` and `w` of a resize.
pub fn size(ctx: &Ctx) -> ApiResult<(u16, u16)> {
    let dim = |k: &str| -> ApiResult<u16> {
        let v = ctx.query.int(k)?.unwrap_or(0);
        u16::try_from(v).map_err(|_| ApiError::bad_request(format!("invalid {k}: {v}")))
    };
    Ok((dim("h")?, dim("w")?))
}

/// A pipe whose ends no other child of this server inherits (the exec's
/// own ends are handed to it as its stdio, which clears the flag there).
fn pipe() -> ApiResult<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ApiError::internal(format!("pipe: {e}")))
}

/// What the exec's thread hands back once the process runs.
enum Started {
    /// Without a terminal: the read ends of stdout and stderr, the write
    /// end of stdin.
    Pipes {
        stdout: OwnedFd,
        stderr: OwnedFd,
        stdin: Option<OwnedFd>,
    },
    /// With one: the pty's master.
    Pty(OwnedFd),
    Detached,
}

pub async fn start(ctx: &mut Ctx, id: &str) -> ApiResult {
    let body: ExecStart = ctx.json().await?;
    let key = id.to_owned();
    let rec = ctx
        .server
        .engine({
            let key = key.clone();
            move |e| Ok(e.exec_inspect(&key)?)
        })
        .await?;
    let tty = rec.process_config.tty;
    let stdin_wanted = rec.open_stdin;
    let hijack = ctx.req.headers().get(UPGRADE).is_some();
    let opts = ExecStartOptions {
        detach: body.detach,
        console_size: body
            .console_size
            .filter(|s| s.len() == 2 && s[0] > 0 && s[1] > 0)
            .map(|s| (s[0], s[1])),
        // As dockerd, the server sees a detached exec's end and records
        // its exit code (its thread waits below).
        watch_detached: true,
    };
    // The exec's own thread: start, report, wait, report the code.
    let (started_tx, started_rx) = oneshot::channel::<Result<Started, ApiError>>();
    let (done_tx, done_rx) = oneshot::channel::<Result<i32, ApiError>>();
    let engine_opts = ctx.server.opts.clone();
    let detach = body.detach;
    std::thread::Builder::new()
        .name("exec".into())
        .spawn(move || {
            let run = || -> Result<(), ApiError> {
                let e = berth_engine::Engine::open(&engine_opts)?;
                let (io, ours) = if detach {
                    (
                        ExecIo::Streams {
                            stdin: None,
                            stdout: None,
                            stderr: None,
                        },
                        None,
                    )
                } else if tty {
                    (ExecIo::Pty, None)
                } else {
                    let (out_r, out_w) = pipe()?;
                    let (err_r, err_w) = pipe()?;
                    let (in_r, in_w) = if stdin_wanted {
                        let (r, w) = pipe()?;
                        (Some(r), Some(w))
                    } else {
                        (None, None)
                    };
                    (
                        ExecIo::Streams {
                            stdin: in_r,
                            stdout: Some(out_w),
                            stderr: Some(err_w),
                        },
                        Some((out_r, err_r, in_w)),
                    )
                };
                let mut p = match e.exec_start(&key, io, &opts) {
                    Ok(p) => p,
                    Err(err) => {
                        let _ = started_tx.send(Err(err.into()));
                        return Ok(());
                    }
                };
                let started = if detach {
                    Started::Detached
                } else if let Some((stdout, stderr, stdin)) = ours {
                    Started::Pipes {
                        stdout,
                        stderr,
                        stdin,
                    }
                } else {
                    match p.take_pty_master() {
                        Some(m) => Started::Pty(m),
                        None => {
                            let _ = started_tx
                                .send(Err(ApiError::internal("the exec has no terminal")));
                            let _ = p.wait();
                            return Ok(());
                        }
                    }
                };
                let _ = started_tx.send(Ok(started));
                let _ = done_tx.send(p.wait().map_err(ApiError::from));
                Ok(())
            };
            if let Err(e) = run() {
                eprintln!("berth-api: exec: {e}");
            }
        })
        .map_err(|e| ApiError::internal(format!("exec thread: {e}")))?;
    let started = started_rx
        .await
        .map_err(|_| ApiError::internal("the exec failed to start"))??;
    let server = ctx.server.clone();
    match started {
        Started::Detached => Ok(http::json(StatusCode::OK, &json!({}))),
        started if hijack => {
            let on_upgrade = hyper::upgrade::on(&mut ctx.req);
            tokio::spawn(async move {
                let _busy = crate::Busy::new(&server);
                let Ok(up) = on_upgrade.await else {
                    return;
                };
                relay(TokioIo::new(up), started, done_rx).await;
            });
            Ok(upgraded(tty))
        }
        started => {
            // An old client without an upgrade: the output as the body.
            let (resp, tx) = http::stream(if tty {
                "application/vnd.docker.raw-stream"
            } else {
                "application/vnd.docker.multiplexed-stream"
            });
            tokio::spawn(async move {
                let _busy = crate::Busy::new(&server);
                let sink = ChannelSink(tx);
                relay(sink, started, done_rx).await;
            });
            Ok(resp)
        }
    }
}

/// A write-only stream into a streamed response (reads end at once).
struct ChannelSink(mpsc::Sender<Bytes>);

impl tokio::io::AsyncRead for ChannelSink {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        _buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for ChannelSink {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        match this.0.try_reserve() {
            Ok(permit) => {
                permit.send(Bytes::copy_from_slice(buf));
                std::task::Poll::Ready(Ok(buf.len()))
            }
            Err(mpsc::error::TrySendError::Closed(())) => {
                std::task::Poll::Ready(Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)))
            }
            Err(mpsc::error::TrySendError::Full(())) => {
                // Wake when the body has taken a chunk.
                let tx = this.0.clone();
                let waker = cx.waker().clone();
                tokio::spawn(async move {
                    if let Ok(p) = tx.reserve().await {
                        drop(p);
                    }
                    waker.wake();
                });
                std::task::Poll::Pending
            }
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

fn file(fd: OwnedFd) -> tokio::fs::File {
    tokio::fs::File::from_std(std::fs::File::from(fd))
}

/// Relays an exec's stdio and the client until the process's output ends
/// and its exit code is recorded; then the client's stream closes.
async fn relay<C>(client: C, started: Started, done: oneshot::Receiver<Result<i32, ApiError>>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut from_client, mut to_client) = tokio::io::split(client);
    // Output: one writer to the client, fed by each source.
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
    let mut input: Option<tokio::fs::File> = None;
    let framed = matches!(started, Started::Pipes { .. });
    match started {
        Started::Pipes {
            stdout,
            stderr,
            stdin,
        } => {
            for (fd, stream) in [(stdout, 1u8), (stderr, 2u8)] {
                let tx = out_tx.clone();
                tokio::spawn(async move {
                    let mut f = file(fd);
                    let mut buf = vec![0u8; 32 * 1024];
                    while let Ok(n) = f.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let mut frame = Vec::with_capacity(n + 8);
                        frame.extend_from_slice(&[stream, 0, 0, 0]);
                        frame.extend_from_slice(&(n as u32).to_be_bytes());
                        frame.extend_from_slice(&buf[..n]);
                        if tx.send(frame).await.is_err() {
                            break;
                        }
                    }
                });
            }
            input = stdin.map(file);
        }
        Started::Pty(master) => {
            let writer = master.try_clone().ok().map(file);
            let tx = out_tx.clone();
            tokio::spawn(async move {
                let mut f = file(master);
                let mut buf = vec![0u8; 32 * 1024];
                // EIO once the terminal's last user is gone: the end.
                while let Ok(n) = f.read(&mut buf).await {
                    if n == 0 || tx.send(buf[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            });
            input = writer;
        }
        Started::Detached => {}
    }
    drop(out_tx);
    if let Some(mut stdin) = input {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
            // Dropped: the process sees the end of its input.
        });
    }
    while let Some(chunk) = out_rx.recv().await {
        if to_client.write_all(&chunk).await.is_err() {
            break;
        }
        let _ = to_client.flush().await;
    }
    // The code is recorded before the client learns the stream ended.
    // A process that could not start: its reason on the stream (stdout,
    // as moby writes it), its 126 in the record.
    if let Ok(Err(e)) = done.await {
        let msg = format!("{}\r\n", e.message);
        let mut out = Vec::new();
        if framed {
            out.extend_from_slice(&[1, 0, 0, 0]);
            out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        }
        out.extend_from_slice(msg.as_bytes());
        let _ = to_client.write_all(&out).await;
    }
    let _ = to_client.shutdown().await;
}

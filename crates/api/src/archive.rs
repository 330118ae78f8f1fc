//! `/containers/{id}/archive` for `docker cp`: HEAD (the path's stat in
//! `X-Docker-Container-Path-Stat`), GET (a tar of the path), PUT (a tar
//! unpacked into a directory). Paths are resolved inside the container's
//! view (its volumes and binds included) by the engine's copy, which never
//! follows a symlink out of the container's root.

use crate::http::{self, ApiError, ApiResult, Resp};
use crate::router::Ctx;
use base64::Engine as _;
use berth_engine::{CopyEnd, EngineError, PathStat};
use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use std::io::Read;
use std::path::PathBuf;
use tokio::sync::mpsc;

pub async fn archive(ctx: &mut Ctx, m: &Method, id: &str) -> ApiResult {
    match *m {
        Method::HEAD => head(ctx, id).await,
        Method::GET => get(ctx, id).await,
        Method::PUT => put(ctx, id).await,
        _ => Err(ApiError::not_found("page not found")),
    }
}

fn path_of(ctx: &Ctx) -> ApiResult<PathBuf> {
    let p = ctx.query.str("path");
    if p.is_empty() {
        return Err(ApiError::bad_request("bad parameter: path cannot be empty"));
    }
    // Relative to the container's root, as Docker takes it.
    Ok(if p.starts_with('/') {
        PathBuf::from(p)
    } else {
        PathBuf::from("/").join(p)
    })
}

/// Go's os.FileMode bits for a stat's st_mode.
fn go_file_mode(mode: u32) -> u32 {
    let mut m = mode & 0o777;
    if mode & libc_bits::S_ISUID != 0 {
        m |= 1 << 23;
    }
    if mode & libc_bits::S_ISGID != 0 {
        m |= 1 << 22;
    }
    if mode & libc_bits::S_ISVTX != 0 {
        m |= 1 << 20;
    }
    m | match mode & libc_bits::S_IFMT {
        libc_bits::S_IFDIR => 1 << 31,
        libc_bits::S_IFLNK => 1 << 27,
        libc_bits::S_IFIFO => 1 << 25,
        libc_bits::S_IFSOCK => 1 << 24,
        libc_bits::S_IFBLK => 1 << 26,
        libc_bits::S_IFCHR => (1 << 26) | (1 << 21),
        _ => 0,
    }
}

/// The st_mode bits (Linux's values).
mod libc_bits {
    pub const S_IFMT: u32 = 0o170000;
    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const S_IFIFO: u32 = 0o010000;
    pub const S_IFSOCK: u32 = 0o140000;
    pub const S_IFBLK: u32 = 0o060000;
    pub const S_IFCHR: u32 = 0o020000;
    pub const S_ISUID: u32 = 0o4000;
    pub const S_ISGID: u32 = 0o2000;
    pub const S_ISVTX: u32 = 0o1000;
}

/// A civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Go's RFC3339Nano in UTC (trailing zeros of the fraction dropped).
pub fn rfc3339_nano(secs: i64, nanos: i64) -> String {
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// The header `docker cp` reads: base64 of Docker's ContainerPathStat.
fn stat_header(st: &PathStat) -> ApiResult<HeaderValue> {
    let v = serde_json::json!({
        "name": st.name,
        "size": st.size,
        "mode": go_file_mode(st.mode),
        "mtime": rfc3339_nano(st.mtime_secs, st.mtime_nsecs),
        "linkTarget": st.link_target.display().to_string(),
    });
    let b64 = base64::engine::general_purpose::STANDARD.encode(v.to_string());
    HeaderValue::from_str(&b64).map_err(|e| ApiError::internal(e.to_string()))
}

async fn stat(ctx: &Ctx, id: &str) -> ApiResult<(PathBuf, PathStat)> {
    let path = path_of(ctx)?;
    let (key, p) = (id.to_owned(), path.clone());
    let st = ctx
        .server
        .engine(move |e| Ok(e.path_stat(&key, &p)?))
        .await?;
    Ok((path, st))
}

fn with_stat(mut r: Resp, st: &PathStat) -> ApiResult {
    r.headers_mut()
        .insert("X-Docker-Container-Path-Stat", stat_header(st)?);
    Ok(r)
}

async fn head(ctx: &mut Ctx, id: &str) -> ApiResult {
    let (_, st) = stat(ctx, id).await?;
    with_stat(http::empty(StatusCode::OK), &st)
}

/// A blocking writer into a streamed response.
struct ChanWriter(mpsc::Sender<Bytes>);

impl std::io::Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn get(ctx: &mut Ctx, id: &str) -> ApiResult {
    // The stat first: a missing path is a 404 before the stream starts.
    let (path, st) = stat(ctx, id).await?;
    let (resp, tx) = http::stream("application/x-tar");
    let server = ctx.server.clone();
    let key = id.to_owned();
    tokio::spawn(async move {
        let _busy = crate::Busy::new(&server);
        let _ = server
            .engine(move |e| {
                let mut w = std::io::BufWriter::with_capacity(64 << 10, ChanWriter(tx));
                let from = CopyEnd::Container(key, path);
                match e.copy(&from, &CopyEnd::Stream, &mut std::io::empty(), &mut w) {
                    Ok(()) | Err(EngineError::Io { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            })
            .await;
    });
    with_stat(resp, &st)
}

/// The request body as a blocking reader (the tar is unpacked as it
/// arrives, never held whole).
struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

/// `PUT /containers/{id}/archive?path=`: the body's tar into the directory
/// `path` (200). Missing: 404; not a directory: 400, as Docker's.
async fn put(ctx: &mut Ctx, id: &str) -> ApiResult {
    let (path, st) = stat(ctx, id).await?;
    let is_dir = st.mode & libc_bits::S_IFMT == libc_bits::S_IFDIR;
    let is_link = st.mode & libc_bits::S_IFMT == libc_bits::S_IFLNK;
    if !is_dir && !is_link {
        return Err(ApiError::bad_request("extraction point is not a directory"));
    }
    let Some(mut body) = ctx.req.body_mut().take() else {
        return Err(ApiError::bad_request("no archive in the request body"));
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, String>>(16);
    tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(d) = f.into_data() {
                        if tx.send(Ok(d)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string())).await;
                    return;
                }
            }
        }
    });
    let key = id.to_owned();
    let no_overwrite = ctx.query.bool("noOverwriteDirNonDir");
    let copy_ids = ctx.query.bool("copyUIDGID");
    ctx.server
        .engine(move |e| {
            let mut body = BodyReader {
                rx,
                cur: Bytes::new(),
            };
            // `docker cp -a`: the files belong to the container's user.
            let mut owned = match copy_ids {
                true => {
                    let (uid, gid) = e.container_user_ids(&key)?;
                    Some(chown_tar(&mut body, uid, gid)?)
                }
                false => None,
            };
            let mut r: &mut dyn Read = match owned.as_mut() {
                Some(f) => f,
                None => &mut body,
            };
            let to = CopyEnd::Container(key.clone(), path.clone());
            let res = if no_overwrite {
                // Checked whole before a byte is written: the tar is
                // spooled, its entries compared with what is there.
                let mut spool = tempfile::tempfile()
                    .map_err(|e| ApiError::internal(format!("spool the archive: {e}")))?;
                std::io::copy(&mut r, &mut spool)
                    .map_err(|e| ApiError::bad_request(format!("reading the archive: {e}")))?;
                rewind(&mut spool)?;
                check_overwrite(e, &key, &path, &mut spool)?;
                rewind(&mut spool)?;
                e.copy(&CopyEnd::Stream, &to, &mut spool, &mut std::io::sink())
            } else {
                e.copy(&CopyEnd::Stream, &to, &mut r, &mut std::io::sink())
            };
            // Whatever the client still sends is read and dropped.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
            let _ = std::io::copy(&mut body, &mut std::io::sink());
            match res {
                Err(EngineError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::InvalidData
                        || source.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    Err(ApiError::bad_request(format!(
                        "invalid tar archive: {source}"
                    )))
                }
                r => Ok(r?),
            }
        })
        .await?;
    Ok(http::empty(StatusCode::OK))
}

/// The tar `r` spooled with every entry's owner set to `uid`:`gid` (names
/// kept, links and long names rewritten as tar writes them).
fn chown_tar(r: &mut dyn Read, uid: u32, gid: u32) -> ApiResult<std::fs::File> {
    let bad = |e: std::io::Error| ApiError::bad_request(format!("invalid tar archive: {e}"));
    let spool =
        tempfile::tempfile().map_err(|e| ApiError::internal(format!("spool the archive: {e}")))?;
    let mut out = tar::Builder::new(spool);
    let mut a = tar::Archive::new(r);
    for entry in a.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let mut h = entry.header().clone();
        h.set_uid(u64::from(uid));
        h.set_gid(u64::from(gid));
        let path = entry.path().map_err(bad)?.into_owned();
        let written = if h.entry_type().is_symlink() || h.entry_type().is_hard_link() {
            let target = entry
                .link_name()
                .map_err(bad)?
                .unwrap_or_default()
                .into_owned();
            out.append_link(&mut h, &path, &target)
        } else {
            out.append_data(&mut h, &path, &mut entry)
        };
        written.map_err(|e| ApiError::internal(format!("spool the archive: {e}")))?;
    }
    let mut f = out
        .into_inner()
        .map_err(|e| ApiError::internal(format!("spool the archive: {e}")))?;
    rewind(&mut f)?;
    Ok(f)
}

fn rewind(f: &mut std::fs::File) -> ApiResult<()> {
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(0))
        .map(drop)
        .map_err(|e| ApiError::internal(format!("spool the archive: {e}")))
}

/// `noOverwriteDirNonDir` (what `docker cp` always asks): an entry of the
/// tar may not replace a directory with a non-directory, nor the reverse.
fn check_overwrite(
    e: &berth_engine::Engine,
    container: &str,
    dir: &std::path::Path,
    tar: &mut std::fs::File,
) -> ApiResult<()> {
    let bad = |e: std::io::Error| ApiError::bad_request(format!("invalid tar archive: {e}"));
    let mut a = tar::Archive::new(tar);
    for entry in a.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.into_owned();
        let rel: PathBuf = name
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let dest = dir.join(&rel);
        let Ok(st) = e.path_stat(container, &dest) else {
            continue;
        };
        let is_dir = st.mode & libc_bits::S_IFMT == libc_bits::S_IFDIR;
        let new_dir = entry.header().entry_type().is_dir();
        if is_dir && !new_dir {
            return Err(ApiError::bad_request(format!(
                "cannot overwrite directory {:?} with non-directory {:?}",
                dest.display().to_string(),
                name.display().to_string()
            )));
        }
        if !is_dir && new_dir {
            return Err(ApiError::bad_request(format!(
                "cannot overwrite non-directory {:?} with directory {:?}",
                dest.display().to_string(),
                name.display().to_string()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_times_and_modes() {
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_700_000_000, 500_000_000),
            "2023-11-14T22:13:20.5Z"
        );
        assert_eq!(go_file_mode(0o040755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(0o120777), (1 << 27) | 0o777);
        assert_eq!(go_file_mode(0o100644), 0o644);
    }
}

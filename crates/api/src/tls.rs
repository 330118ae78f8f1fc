//! TLS for a TCP listener, in Docker's `--tlsverify` model: the server
//! presents `--tlscert`/`--tlskey` and requires a client certificate signed
//! by `--tlscacert`. A client without one fails the handshake (as dockerd's
//! does); a client speaking plain HTTP gets Go's 400 answer.

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The TLS files as given on the command line.
#[derive(Default, Clone)]
pub struct TlsArgs {
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsArgs {
    /// Whether any TLS flag was given.
    pub fn any(&self) -> bool {
        self.verify || self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }

    /// The three files, when `--tlsverify` has them all; an error naming
    /// what is missing otherwise. None when no TLS flag was given.
    fn files(&self) -> Result<Option<(&Path, &Path, &Path)>, String> {
        if !self.any() {
            return Ok(None);
        }
        if !self.verify {
            return Err("--tlscacert, --tlscert and --tlskey need --tlsverify: \
                 the API is served over TLS only with client certificates verified"
                .to_owned());
        }
        match (&self.ca, &self.cert, &self.key) {
            (Some(ca), Some(cert), Some(key)) => Ok(Some((ca, cert, key))),
            _ => {
                let missing: Vec<&str> = [
                    ("--tlscacert", self.ca.is_none()),
                    ("--tlscert", self.cert.is_none()),
                    ("--tlskey", self.key.is_none()),
                ]
                .into_iter()
                .filter_map(|(f, m)| m.then_some(f))
                .collect();
                Err(format!("--tlsverify needs {}", missing.join(", ")))
            }
        }
    }
}

/// The server's TLS configuration, or None without TLS flags. Every file
/// is read and checked here, before anything is listened on.
pub fn config(a: &TlsArgs) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    let Some((ca, cert, key)) = a.files()? else {
        return Ok(None);
    };
    // ring: the provider the workspace's registry client already builds.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_pem = std::fs::read(ca)
        .map_err(|e| format!("could not read CA certificate {:?}: {e}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca_pem).flatten() {
        let _ = roots.add(c);
    }
    if roots.is_empty() {
        return Err(format!(
            "failed to append certificates from PEM file: {:?}",
            ca.display()
        ));
    }
    let pair = format!("(cert: {:?}, key: {:?})", cert.display(), key.display());
    let cert_pem =
        std::fs::read(cert).map_err(|e| format!("could not load X509 key pair {pair}: {e}"))?;
    let key_pem =
        std::fs::read(key).map_err(|e| format!("could not load X509 key pair {pair}: {e}"))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("error reading X509 key pair {pair}: certificate: {e}"))?;
    if chain.is_empty() {
        return Err(format!(
            "error reading X509 key pair {pair}: no certificate in {:?}",
            cert.display()
        ));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        format!(
            "error reading X509 key pair {pair}: no unencrypted private key in {:?}",
            key.display()
        )
    })?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("CA certificate {:?}: {e}", ca.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                format!("error reading X509 key pair {pair}: private key does not match public key")
            }
            e => format!("error reading X509 key pair {pair}: {e}"),
        })?;
    Ok(Some(Arc::new(cfg)))
}

/// How long a client has to finish its handshake.
const HANDSHAKE: Duration = Duration::from_secs(30);

/// The TLS stream of a freshly accepted connection, or None when the
/// client spoke plain HTTP (answered with Go's 400, as dockerd does), did
/// not finish its handshake in time or was refused (no or a bad client
/// certificate: the handshake fails with an alert, nothing is served).
pub async fn accept(
    acceptor: &tokio_rustls::TlsAcceptor,
    mut s: tokio::net::TcpStream,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(HANDSHAKE, s.peek(&mut first))
        .await
        .ok()?
        .ok()?;
    // A TLS connection opens with a handshake record (type 22).
    if n == 1 && first[0] != 0x16 {
        let _ = s
            .write_all(
                b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
            )
            .await;
        let _ = s.shutdown().await;
        return None;
    }
    tokio::time::timeout(HANDSHAKE, acceptor.accept(s))
        .await
        .ok()?
        .ok()
}

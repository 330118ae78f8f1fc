//! The HTTP side: endpoints, TLS, authentication, retries, blobs and manifests.

use super::auth::{parse_challenge, Challenge, Credentials};
use super::manifest::{ACCEPT, MAX_MANIFEST};
use super::{RegistryError, Result};
use berth_digest::Digest;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How many times a request is tried when the connection breaks or the registry
/// answers 5xx/429; the waits between tries double from [`BACKOFF`].
const ATTEMPTS: u32 = 5;
const BACKOFF: Duration = Duration::from_millis(100);

/// Where registries are and how to reach them.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `--tls-verify=false`: HTTPS without certificate verification, and plain HTTP.
    pub tls_verify: bool,
    /// Registries (`host[:port]`) that may be reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Docker's `certs.d` layout: `DIR/HOST[:PORT]/*.crt` are extra CAs for that registry.
    pub certs_dir: PathBuf,
    /// The Docker client configuration with the credentials.
    pub docker_config: PathBuf,
    /// Upload blobs in chunks of this size (PATCH) even when the registry does not ask.
    pub chunk_size: Option<u64>,
    /// Refuse every registry that is not on this machine (tests set
    /// `BERTH_LOOPBACK_REGISTRIES_ONLY=1` so that no public name is ever resolved).
    pub loopback_only: bool,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            tls_verify: true,
            insecure: Vec::new(),
            certs_dir: PathBuf::from("/etc/docker/certs.d"),
            docker_config: super::DockerConfig::default_path(),
            chunk_size: None,
            loopback_only: false,
        }
    }
}

impl RegistryOptions {
    /// The defaults with the environment's overrides: `BERTH_CERTS_D` (the certs.d
    /// directory), `BERTH_INSECURE_REGISTRIES` (comma-separated), `BERTH_PUSH_CHUNK_SIZE`
    /// (bytes), `DOCKER_CONFIG`. (daemon.json's `insecure-registries` are the engine's to add.)
    pub fn from_env() -> RegistryOptions {
        let mut o = RegistryOptions::default();
        if let Some(d) = std::env::var_os("BERTH_CERTS_D").filter(|d| !d.is_empty()) {
            o.certs_dir = PathBuf::from(d);
        }
        if let Ok(list) = std::env::var("BERTH_INSECURE_REGISTRIES") {
            o.insecure.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
        o.loopback_only = std::env::var_os("BERTH_LOOPBACK_REGISTRIES_ONLY")
            .is_some_and(|v| !v.is_empty() && v != "0");
        o.chunk_size = std::env::var("BERTH_PUSH_CHUNK_SIZE")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|n| *n > 0);
        o
    }
}

/// A registry's address and how it may be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The domain as references name it (`docker.io`, `localhost:5000`).
    pub domain: String,
    /// The host to connect to (`registry-1.docker.io` for `docker.io`).
    pub host: String,
    /// Plain HTTP is allowed (after HTTPS fails): localhost, loopback, marked insecure.
    pub allow_http: bool,
    /// localhost or a loopback address.
    pub loopback: bool,
    /// HTTPS without certificate checks: `--tls-verify=false`, or the registry is in
    /// the insecure list (Docker's `insecure-registries`: "ignore the certificate error").
    pub skip_verify: bool,
}

impl Endpoint {
    pub fn new(domain: &str, opts: &RegistryOptions) -> Endpoint {
        let host = if domain == crate::reference::DEFAULT_DOMAIN {
            "registry-1.docker.io".to_owned()
        } else {
            domain.to_owned()
        };
        let bare = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(rest),
            None => host.split(':').next().unwrap_or(&host),
        };
        let loopback = bare == "localhost"
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let listed = opts
            .insecure
            .iter()
            .any(|i| i == domain || i == &host || i == bare);
        Endpoint {
            domain: domain.to_owned(),
            host,
            allow_http: !opts.tls_verify || loopback || listed,
            loopback,
            skip_verify: !opts.tls_verify || listed,
        }
    }
}

/// What a cross-repository mount did.
#[derive(Debug)]
pub enum MountResult {
    Mounted,
    /// The registry started an upload instead (at this location).
    Upload(String),
}

enum Body<'a> {
    None,
    Bytes(&'a [u8]),
    /// `len` bytes of the file from `offset`.
    File(&'a Path, u64, u64),
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    header: Option<String>,
}

/// One repository on one registry.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    domain: String,
    repo: String,
    creds: Option<Credentials>,
    scopes: Mutex<Vec<String>>,
    auth: Mutex<AuthState>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({}/{})", self.base, self.repo)
    }
}

fn tls_config(ep: &Endpoint, opts: &RegistryOptions) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Invalid(format!("TLS: {e}")))?;
    if ep.skip_verify {
        return Ok(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth(),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // The system's bundle (Debian's), as Docker trusts it.
    add_pem_file(
        &mut roots,
        Path::new("/etc/ssl/certs/ca-certificates.crt"),
        false,
    )?;
    let dir = opts.certs_dir.join(&ep.domain);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        files.sort();
        for f in files {
            add_pem_file(&mut roots, &f, true)?;
        }
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

fn add_pem_file(roots: &mut rustls::RootCertStore, path: &Path, required: bool) -> Result<()> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let iter = match CertificateDer::pem_file_iter(path) {
        Ok(i) => i,
        Err(_) if !required => return Ok(()),
        Err(e) => {
            return Err(RegistryError::Invalid(format!(
                "CA certificate {}: {e}",
                path.display()
            )))
        }
    };
    let mut n = 0;
    for c in iter {
        let c = c.map_err(|e| {
            RegistryError::Invalid(format!("CA certificate {}: {e}", path.display()))
        })?;
        if roots.add(c).is_ok() {
            n += 1;
        }
    }
    if required && n == 0 {
        return Err(RegistryError::Invalid(format!(
            "CA certificate {}: no usable certificate in it",
            path.display()
        )));
    }
    Ok(())
}

/// `--tls-verify=false`: any certificate is accepted (signatures still checked).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A transport error as one line (ureq's own text without the URL it repeats).
fn transport_msg(t: &ureq::Transport) -> String {
    let mut s = t.kind().to_string();
    if let Some(m) = t.message() {
        s.push_str(": ");
        s.push_str(m);
    }
    let mut src = std::error::Error::source(t);
    while let Some(e) = src {
        let m = e.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = e.source();
    }
    s
}

/// The registry's error list (`{"errors":[{"code":…,"message":…}]}`) as Docker prints it:
/// `manifest unknown: manifest unknown`.
fn error_body(resp: ureq::Response) -> String {
    let status = resp.status();
    let text = resp.status_text().to_owned();
    let mut body = Vec::new();
    let _ = resp.into_reader().take(64 << 10).read_to_end(&mut body);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
            let parts: Vec<String> = errs
                .iter()
                .map(|e| {
                    let code = e
                        .get("code")
                        .and_then(|c| c.as_str())
                        .unwrap_or("")
                        .to_lowercase()
                        .replace('_', " ");
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    match (code.is_empty(), msg.is_empty()) {
                        (false, false) => format!("{code}: {msg}"),
                        (false, true) => code,
                        _ => msg.to_owned(),
                    }
                })
                .collect();
            if !parts.is_empty() {
                return parts.join("; ");
            }
        }
        if let Some(d) = v.get("details").and_then(|d| d.as_str()) {
            return d.to_owned();
        }
    }
    let b = String::from_utf8_lossy(&body);
    let b = b.trim();
    if b.is_empty() || b.len() > 200 || b.contains('<') {
        format!("{status} {text}")
    } else {
        format!("{status} {text}: {}", b.replace('\n', " "))
    }
}

fn digest_query(location: &str, d: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest=sha256%3A{}", d.hex())
}

impl Client {
    /// Connects to `repo` on `domain` for pulling (or pulling and pushing), with the
    /// stored credentials (or `creds`). Pings `/v2/` to choose HTTPS or (where allowed)
    /// HTTP and learn how the registry authenticates.
    pub fn connect(
        domain: &str,
        repo: &str,
        push: bool,
        opts: &RegistryOptions,
        creds: Option<Credentials>,
    ) -> Result<Client> {
        let ep = Endpoint::new(domain, opts);
        if opts.loopback_only && !ep.loopback {
            return Err(RegistryError::Invalid(format!(
                "registry {domain} is not on this machine and BERTH_LOOPBACK_REGISTRIES_ONLY is set"
            )));
        }
        let creds = match creds {
            Some(c) => Some(c),
            None => super::DockerConfig::load(&opts.docker_config)?.credentials(domain)?,
        };
        let agent = ureq::AgentBuilder::new()
            .tls_config(tls_config(&ep, opts)?)
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(60))
            .timeout_write(Duration::from_secs(60))
            .redirects(10)
            .redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(16)
            .build();
        let actions = if push { "pull,push" } else { "pull" };
        let mut client = Client {
            agent,
            base: format!("https://{}", ep.host),
            domain: domain.to_owned(),
            repo: repo.to_owned(),
            creds,
            scopes: Mutex::new(if repo.is_empty() {
                Vec::new()
            } else {
                vec![format!("repository:{repo}:{actions}")]
            }),
            auth: Mutex::new(AuthState::default()),
        };
        match client.ping() {
            Ok(()) => {}
            Err(e @ RegistryError::Transport { .. }) if ep.allow_http => {
                client.base = format!("http://{}", ep.host);
                // Not a registry over plain HTTP either: the HTTPS error says most.
                client.ping().map_err(|_| e)?;
            }
            Err(e) => return Err(e),
        }
        Ok(client)
    }

    pub fn repo(&self) -> &str {
        &self.repo
    }
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// `https://host` or `http://host`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.repo)
    }

    fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = match self.agent.get(&url).call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                return Err(RegistryError::Transport {
                    method: "Get",
                    url,
                    msg: transport_msg(&t),
                })
            }
        };
        match resp.status() {
            200 => Ok(()),
            401 => {
                let ch = resp.header("www-authenticate").and_then(parse_challenge);
                self.lock_auth().challenge = ch;
                Ok(())
            }
            // Not a registry's answer (an HTTPS server spoken to in plain HTTP, a web
            // server without /v2/).
            status => Err(RegistryError::Status {
                what: format!("Get \"{url}\""),
                status,
                msg: error_body(resp),
            }),
        }
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Also asks for pull access to `repo` (the source of a cross-repository mount).
    pub fn add_pull_scope(&self, repo: &str) {
        let s = format!("repository:{repo}:pull");
        let mut scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        if !scopes.contains(&s) {
            scopes.push(s);
            // The current token does not cover it.
            self.lock_auth().header = None;
        }
    }

    /// Gets an `Authorization` header for the known challenge.
    fn authenticate(&self) -> Result<()> {
        let challenge = self.lock_auth().challenge.clone();
        let header = match challenge {
            None => return Ok(()),
            Some(Challenge::Basic) => match &self.creds {
                Some(c) => c.basic_header(),
                None => {
                    return Err(RegistryError::Unauthorized {
                        what: format!("{}/{}", self.domain, self.repo),
                        msg: "authentication required (berth login first)".into(),
                    })
                }
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope: _,
            }) => {
                let scopes = self
                    .scopes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                format!(
                    "Bearer {}",
                    self.fetch_token(&realm, service.as_deref(), &scopes)?
                )
            }
        };
        self.lock_auth().header = Some(header);
        Ok(())
    }

    fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<String> {
        let mut req = self.agent.get(realm);
        if let Some(s) = service {
            req = req.query("service", s);
        }
        for s in scopes {
            req = req.query("scope", s);
        }
        if let Some(c) = &self.creds {
            req = req.set("Authorization", &c.basic_header());
            req = req.query("account", &c.username);
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(code, r)) => {
                let msg = error_body(r);
                return Err(if code == 401 || code == 403 {
                    RegistryError::Unauthorized {
                        what: format!("get a token from {realm}"),
                        msg,
                    }
                } else {
                    RegistryError::Status {
                        what: format!("get a token from {realm}"),
                        status: code,
                        msg,
                    }
                });
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(RegistryError::Transport {
                    method: "Get",
                    url: realm.to_owned(),
                    msg: transport_msg(&t),
                })
            }
        };
        let mut body = Vec::new();
        resp.into_reader()
            .take(1 << 20)
            .read_to_end(&mut body)
            .map_err(|e| RegistryError::io(format!("read the token from {realm}"), e))?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Invalid(format!("token from {realm}: {e}")))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| RegistryError::Invalid(format!("token from {realm}: no token in it")))
    }

    /// Sends a request: authenticated (again after a 401), retried with back-off on
    /// broken connections and 5xx/429. Any HTTP status is returned as a response.
    fn send(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, String)],
        body: Body<'_>,
    ) -> Result<ureq::Response> {
        let mut reauthed = false;
        let mut attempt = 0;
        if self.lock_auth().challenge.is_some() && self.lock_auth().header.is_none() {
            self.authenticate()?;
        }
        loop {
            let mut req = self.agent.request(method, url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(h) = self.lock_auth().header.clone() {
                req = req.set("Authorization", &h);
            }
            let res = match &body {
                Body::None => req.call(),
                Body::Bytes(b) => req.send_bytes(b),
                Body::File(path, off, len) => {
                    let mut f = std::fs::File::open(path)
                        .map_err(|e| RegistryError::io(format!("open {}", path.display()), e))?;
                    f.seek(SeekFrom::Start(*off))
                        .map_err(|e| RegistryError::io(format!("read {}", path.display()), e))?;
                    req.set("Content-Length", &len.to_string())
                        .send(f.take(*len))
                }
            };
            match res {
                Ok(r) | Err(ureq::Error::Status(_, r)) => {
                    let status = r.status();
                    if status == 401 && !reauthed {
                        if let Some(ch) = r.header("www-authenticate").and_then(parse_challenge) {
                            reauthed = true;
                            {
                                let mut a = self.lock_auth();
                                a.challenge = Some(ch);
                                a.header = None;
                            }
                            self.authenticate()?;
                            continue;
                        }
                    }
                    if (status >= 500 || status == 429) && attempt + 1 < ATTEMPTS {
                        std::thread::sleep(BACKOFF * 2u32.pow(attempt));
                        attempt += 1;
                        continue;
                    }
                    return Ok(r);
                }
                Err(ureq::Error::Transport(t)) => {
                    if attempt + 1 < ATTEMPTS {
                        std::thread::sleep(BACKOFF * 2u32.pow(attempt));
                        attempt += 1;
                        continue;
                    }
                    return Err(RegistryError::Transport {
                        method: match method {
                            "GET" => "Get",
                            "HEAD" => "Head",
                            "PUT" => "Put",
                            "POST" => "Post",
                            "PATCH" => "Patch",
                            m => m,
                        },
                        url: url.to_owned(),
                        msg: transport_msg(&t),
                    });
                }
            }
        }
    }

    fn status_error(&self, what: String, resp: ureq::Response) -> RegistryError {
        let status = resp.status();
        let msg = error_body(resp);
        if status == 401 || status == 403 {
            RegistryError::Unauthorized { what, msg }
        } else {
            RegistryError::Status { what, status, msg }
        }
    }

    /// Checks that the credentials are accepted (`login`).
    pub fn check_login(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        if self.lock_auth().challenge.is_none() {
            return Ok(());
        }
        let r = self.send("GET", &url, &[], Body::None)?;
        if r.status() == 200 {
            Ok(())
        } else {
            Err(self.status_error(format!("login to {}", self.domain), r))
        }
    }

    /// GETs the manifest `reference` (a tag or `sha256:…`): its bytes, media type and
    /// digest (verified when asked for by digest).
    pub fn get_manifest(
        &self,
        reference: &str,
        shown: &str,
    ) -> Result<(Vec<u8>, Option<String>, Digest)> {
        let url = self.url(&format!("manifests/{reference}"));
        let r = self.send("GET", &url, &[("Accept", ACCEPT.to_owned())], Body::None)?;
        if r.status() == 404 {
            return Err(RegistryError::ManifestUnknown {
                reference: shown.to_owned(),
                msg: error_body(r),
            });
        }
        if r.status() != 200 {
            return Err(self.status_error(format!("manifest for {shown}"), r));
        }
        let ct = r.header("content-type").map(str::to_owned);
        let header_digest = r
            .header("docker-content-digest")
            .and_then(|d| d.parse::<Digest>().ok());
        let mut bytes = Vec::new();
        r.into_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::io(format!("read manifest for {shown}"), e))?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::Invalid(format!(
                "manifest for {shown} is larger than {MAX_MANIFEST} bytes"
            )));
        }
        let digest = Digest::of(&bytes);
        let expected = reference.parse::<Digest>().ok().or(header_digest);
        if let Some(exp) = expected {
            if exp != digest {
                return Err(RegistryError::Invalid(format!(
                    "manifest for {shown}: digest mismatch: expected {exp} got {digest}"
                )));
            }
        }
        Ok((bytes, ct, digest))
    }

    /// A small blob (a config) in memory, verified.
    pub fn get_blob_bytes(&self, d: &Digest, limit: u64) -> Result<Vec<u8>> {
        let mut r = BlobReader::new(self, d.clone(), None);
        let mut v = Vec::new();
        (&mut r)
            .take(limit + 1)
            .read_to_end(&mut v)
            .map_err(|e| RegistryError::io(format!("read blob {d}"), e))?;
        if v.len() as u64 > limit {
            return Err(RegistryError::Invalid(format!(
                "blob {d} is larger than {limit} bytes"
            )));
        }
        let got = Digest::of(&v);
        if got != *d {
            return Err(RegistryError::Invalid(format!(
                "blob {d}: digest mismatch: got {got}"
            )));
        }
        Ok(v)
    }

    /// HEAD: whether the registry has blob `d` in this repository.
    pub fn has_blob(&self, d: &Digest) -> Result<bool> {
        let url = self.url(&format!("blobs/{d}"));
        let r = self.send("HEAD", &url, &[], Body::None)?;
        match r.status() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error(format!("check blob {d}"), r)),
        }
    }

    fn location(&self, r: &ureq::Response, what: &str) -> Result<String> {
        let loc = r.header("location").ok_or_else(|| {
            RegistryError::Invalid(format!("{what}: the registry sent no Location"))
        })?;
        let base = url::Url::parse(r.get_url())
            .map_err(|e| RegistryError::Invalid(format!("{what}: {e}")))?;
        base.join(loc)
            .map(|u| u.to_string())
            .map_err(|e| RegistryError::Invalid(format!("{what}: bad Location {loc:?}: {e}")))
    }

    /// Tries to mount blob `d` from repository `from` on the same registry.
    pub fn mount_blob(&self, d: &Digest, from: &str) -> Result<MountResult> {
        self.add_pull_scope(from);
        let url = format!(
            "{}?mount=sha256%3A{}&from={}",
            self.url("blobs/uploads/"),
            d.hex(),
            from
        );
        let r = self.send(
            "POST",
            &url,
            &[("Content-Length", "0".into())],
            Body::Bytes(b""),
        )?;
        match r.status() {
            201 => Ok(MountResult::Mounted),
            202 => Ok(MountResult::Upload(self.location(&r, "mount")?)),
            _ => Err(self.status_error(format!("mount blob {d} from {from}"), r)),
        }
    }

    /// Starts an upload: its location and the minimum chunk size the registry asks for.
    pub fn start_upload(&self) -> Result<(String, Option<u64>)> {
        let url = self.url("blobs/uploads/");
        let r = self.send(
            "POST",
            &url,
            &[("Content-Length", "0".into())],
            Body::Bytes(b""),
        )?;
        if r.status() != 202 {
            return Err(self.status_error("start a blob upload".into(), r));
        }
        let min = r
            .header("oci-chunk-min-length")
            .and_then(|v| v.parse::<u64>().ok());
        Ok((self.location(&r, "start upload")?, min))
    }

    /// Uploads blob `d` (the file `path`, `size` bytes) to `location`: monolithic, or
    /// in chunks of `chunk` bytes (PATCH each, then PUT). `progress` gets the bytes sent.
    pub fn upload_blob(
        &self,
        location: String,
        path: &Path,
        size: u64,
        d: &Digest,
        chunk: Option<u64>,
        progress: &dyn Fn(u64),
    ) -> Result<()> {
        let what = || format!("upload blob {d}");
        let mut location = location;
        if let Some(chunk) = chunk.filter(|c| *c < size) {
            let mut off = 0;
            while off < size {
                let len = chunk.min(size - off);
                let r = self.send(
                    "PATCH",
                    &location,
                    &[
                        ("Content-Type", "application/octet-stream".into()),
                        ("Content-Range", format!("{}-{}", off, off + len - 1)),
                    ],
                    Body::File(path, off, len),
                )?;
                if r.status() != 202 {
                    return Err(self.status_error(what(), r));
                }
                location = self.location(&r, "upload")?;
                off += len;
                progress(off);
            }
            let r = self.send(
                "PUT",
                &digest_query(&location, d),
                &[("Content-Length", "0".into())],
                Body::Bytes(b""),
            )?;
            if r.status() != 201 {
                return Err(self.status_error(what(), r));
            }
            return Ok(());
        }
        let r = self.send(
            "PUT",
            &digest_query(&location, d),
            &[("Content-Type", "application/octet-stream".into())],
            Body::File(path, 0, size),
        )?;
        if r.status() != 201 {
            return Err(self.status_error(what(), r));
        }
        progress(size);
        Ok(())
    }

    /// PUTs a manifest under `reference` (a tag or digest); returns its digest.
    pub fn put_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Result<Digest> {
        let url = self.url(&format!("manifests/{reference}"));
        let r = self.send(
            "PUT",
            &url,
            &[("Content-Type", media_type.to_owned())],
            Body::Bytes(bytes),
        )?;
        if r.status() != 201 && r.status() != 200 {
            return Err(self.status_error(format!("push manifest {reference}"), r));
        }
        Ok(Digest::of(bytes))
    }

    /// Opens blob `d` from `offset` (a `Range` request when `offset > 0`). `Ok(None)`:
    /// the registry ignored the range, the stream is from byte 0.
    fn open_blob(&self, d: &Digest, offset: u64) -> Result<(Box<dyn Read + Send + Sync>, bool)> {
        let url = self.url(&format!("blobs/{d}"));
        let mut headers = Vec::new();
        if offset > 0 {
            headers.push(("Range", format!("bytes={offset}-")));
        }
        let r = self.send("GET", &url, &headers, Body::None)?;
        match r.status() {
            200 => Ok((r.into_reader(), offset == 0)),
            206 if offset > 0 => {
                let start = r
                    .header("content-range")
                    .and_then(|c| c.trim().strip_prefix("bytes "))
                    .and_then(|c| c.split('-').next())
                    .and_then(|s| s.parse::<u64>().ok());
                if start != Some(offset) {
                    return Err(RegistryError::Invalid(format!(
                        "blob {d}: the registry answered a range from {offset} with {:?}",
                        r.header("content-range")
                    )));
                }
                Ok((r.into_reader(), true))
            }
            404 => Err(RegistryError::Status {
                what: format!("blob {d}"),
                status: 404,
                msg: error_body(r),
            }),
            _ => Err(self.status_error(format!("blob {d}"), r)),
        }
    }
}

/// A blob being downloaded, as one stream: a broken connection (or a premature end) is
/// resumed where it stopped with a `Range` request, or, when the registry does not do
/// ranges, read again from the start with what was already delivered skipped.
pub struct BlobReader<'c> {
    client: &'c Client,
    digest: Digest,
    /// The size the descriptor gives; reading more is an error.
    size: Option<u64>,
    offset: u64,
    inner: Option<Box<dyn Read + Send + Sync>>,
    failures: u32,
}

impl<'c> BlobReader<'c> {
    /// Reads blob `d` (of `size` bytes, if known) from the start.
    pub fn new(client: &'c Client, digest: Digest, size: Option<u64>) -> BlobReader<'c> {
        BlobReader::from_offset(client, digest, size, 0)
    }

    /// Reads blob `d` from byte `offset` (a resumed download).
    pub fn from_offset(
        client: &'c Client,
        digest: Digest,
        size: Option<u64>,
        offset: u64,
    ) -> BlobReader<'c> {
        BlobReader {
            client,
            digest,
            size,
            offset,
            inner: None,
            failures: 0,
        }
    }

    /// How many bytes of the blob have been delivered (including a resumed start).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn open(&mut self) -> io::Result<()> {
        let (mut r, at_offset) = self
            .client
            .open_blob(&self.digest, self.offset)
            .map_err(io::Error::other)?;
        if !at_offset {
            // The whole blob again: skip what was delivered.
            let skipped = io::copy(&mut (&mut r).take(self.offset), &mut io::sink())?;
            if skipped != self.offset {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the blob is shorter than what was already read",
                ));
            }
        }
        self.inner = Some(r);
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.size.is_some_and(|s| self.offset >= s) {
            return Ok(0);
        }
        loop {
            if self.inner.is_none() {
                if let Err(e) = self.open() {
                    // A registry error is final (open already retried 5xx).
                    if e.get_ref().is_some_and(|i| i.is::<RegistryError>())
                        || self.failures + 1 >= ATTEMPTS
                    {
                        return Err(e);
                    }
                    self.failures += 1;
                    std::thread::sleep(BACKOFF * 2u32.pow(self.failures));
                    continue;
                }
            }
            let Some(inner) = self.inner.as_mut() else {
                continue;
            };
            let res = inner.read(buf);
            match res {
                Ok(0) if self.size.is_none_or(|s| self.offset >= s) => return Ok(0),
                Ok(0) | Err(_) if self.failures + 1 < ATTEMPTS => {
                    // Broken or cut short: resume.
                    self.inner = None;
                    self.failures += 1;
                    std::thread::sleep(BACKOFF * 2u32.pow(self.failures));
                }
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "blob {}: the connection ended at byte {} of {}",
                            self.digest,
                            self.offset,
                            self.size.unwrap_or(0)
                        ),
                    ))
                }
                Err(e) => return Err(e),
                Ok(n) => {
                    if let Some(s) = self.size {
                        if self.offset + n as u64 > s {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "blob {}: more than the {s} bytes its descriptor says",
                                    self.digest
                                ),
                            ));
                        }
                    }
                    self.offset += n as u64;
                    self.failures = 0;
                    return Ok(n);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let o = RegistryOptions {
            insecure: vec!["reg.example:5000".into()],
            ..RegistryOptions::default()
        };
        let e = Endpoint::new("docker.io", &o);
        assert_eq!(e.host, "registry-1.docker.io");
        assert!(!e.allow_http && !e.loopback);
        for local in [
            "localhost:5000",
            "localhost",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            let e = Endpoint::new(local, &o);
            assert!(e.allow_http && e.loopback, "{local}");
            assert_eq!(e.host, local);
        }
        let listed = Endpoint::new("reg.example:5000", &o);
        assert!(listed.allow_http && listed.skip_verify);
        assert!(!Endpoint::new("reg.example:5001", &o).allow_http);
        assert!(!Endpoint::new("localhost:5000", &o).skip_verify);
        assert!(!Endpoint::new("quay.io", &o).allow_http);
        let no_verify = RegistryOptions {
            tls_verify: false,
            ..RegistryOptions::default()
        };
        assert!(Endpoint::new("quay.io", &no_verify).allow_http);
        assert!(Endpoint::new("quay.io", &no_verify).skip_verify);
    }

    #[test]
    fn locations_and_refusals() {
        let d = Digest::of(b"x");
        assert_eq!(
            digest_query("http://h/v2/r/blobs/uploads/u?_state=s", &d),
            format!(
                "http://h/v2/r/blobs/uploads/u?_state=s&digest=sha256%3A{}",
                d.hex()
            )
        );
        assert_eq!(
            digest_query("/u", &d),
            format!("/u?digest=sha256%3A{}", d.hex())
        );
        let o = RegistryOptions {
            loopback_only: true,
            ..RegistryOptions::default()
        };
        let e = Client::connect("docker.io", "library/busybox", false, &o, None).unwrap_err();
        assert!(e.to_string().contains("not on this machine"), "{e}");
    }
}

//! Credentials as Docker keeps them (`$DOCKER_CONFIG/config.json`, by default
//! `~/.docker/config.json`) and the authentication challenges registries send.
//!
//! A registry's credentials come from, in Docker's order: `credHelpers[HOST]`, then
//! `credsStore` (both run `docker-credential-NAME get|store|erase`, the credential helper
//! protocol: the server URL or a JSON object on stdin, JSON on stdout), then
//! `auths[HOST].auth` (base64 of `user:password`). Docker Hub's key is
//! `https://index.docker.io/v1/`.

use super::{RegistryError, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Docker Hub's key in `auths` and for credential helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and a secret (a password or a token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.username)
    }
}

impl Credentials {
    /// The value of a Basic `Authorization` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// `base64(user:password)`, the `auth` of Docker's AuthConfig and of config.json's
/// `auths` entries, as its two halves.
fn decode_basic(auth: &str) -> std::result::Result<(String, String), &'static str> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| "auth is not base64")?;
    let raw = String::from_utf8(raw).map_err(|_| "auth is not UTF-8")?;
    let (u, p) = raw.split_once(':').ok_or("auth is not user:password")?;
    Ok((u.to_owned(), p.to_owned()))
}

/// Docker's AuthConfig as an API client sends it (the `X-Registry-Auth` header of a pull
/// or push, the body of `POST /auth`). A field that is missing or not a string is empty,
/// as dockerd reads it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    /// base64 of `user:password`, used when `username` and `password` are both empty.
    pub auth: String,
    pub identity_token: String,
    pub server_address: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AuthConfig({}, {}, <secret>)",
            self.server_address, self.username
        )
    }
}

impl AuthConfig {
    /// From its JSON (Docker's lowercase keys).
    pub fn from_json(v: &Value) -> AuthConfig {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        AuthConfig {
            username: s("username"),
            password: s("password"),
            auth: s("auth"),
            identity_token: s("identitytoken"),
            server_address: s("serveraddress"),
        }
    }

    /// From an `X-Registry-Auth` header: base64url of the JSON (padded or not; Docker's
    /// older clients send standard base64).
    pub fn from_header(raw: &str) -> Result<AuthConfig> {
        let raw = raw.trim();
        let decoded = base64::engine::general_purpose::URL_SAFE
            .decode(raw)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(raw))
            .map_err(|_| {
                RegistryError::Credentials("invalid X-Registry-Auth header: not base64".into())
            })?;
        let v: Value = serde_json::from_slice(&decoded).map_err(|e| {
            RegistryError::Credentials(format!("invalid X-Registry-Auth header: {e}"))
        })?;
        Ok(AuthConfig::from_json(&v))
    }

    /// The credentials it holds: user and password (from `auth` when both are empty), or
    /// the identity token when there is no password; None when it holds none.
    pub fn credentials(&self) -> Option<Credentials> {
        let (mut user, mut pass) = (self.username.clone(), self.password.clone());
        if user.is_empty() && pass.is_empty() {
            if let Ok((u, p)) = decode_basic(&self.auth) {
                (user, pass) = (u, p);
            }
        }
        if pass.is_empty() && !self.identity_token.is_empty() {
            return Some(Credentials {
                username: "<token>".into(),
                secret: self.identity_token.clone(),
            });
        }
        (!user.is_empty() || !pass.is_empty()).then_some(Credentials {
            username: user,
            secret: pass,
        })
    }
}

/// The key a registry has in `auths` and for credential helpers.
pub fn config_key(domain: &str) -> String {
    if domain == crate::reference::DEFAULT_DOMAIN {
        DOCKER_HUB_KEY.to_owned()
    } else {
        domain.to_owned()
    }
}

/// `https://host:port/v1/` → `host:port` (how Docker matches `auths` keys).
fn normalize_key(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.split('/').next().unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            crate::reference::DEFAULT_DOMAIN.to_owned()
        }
        _ => k.to_owned(),
    }
}

/// A Docker client configuration file.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    json: Map<String, Value>,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> PathBuf {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
                Path::new(&home).join(".docker")
            }
        };
        dir.join("config.json")
    }

    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<DockerConfig> {
        let json = match std::fs::read(path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(RegistryError::Credentials(format!(
                        "{}: not a JSON object",
                        path.display()
                    )))
                }
                Err(e) => {
                    return Err(RegistryError::Credentials(format!(
                        "{}: {e}",
                        path.display()
                    )))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(RegistryError::io(format!("read {}", path.display()), e)),
        };
        Ok(DockerConfig {
            path: path.to_owned(),
            json,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credential helper for `domain`, if one is configured.
    fn helper(&self, domain: &str) -> Option<String> {
        let want = normalize_key(&config_key(domain));
        if let Some(Value::Object(h)) = self.json.get("credHelpers") {
            for (k, v) in h {
                if normalize_key(k) == want {
                    if let Some(name) = v.as_str().filter(|s| !s.is_empty()) {
                        return Some(name.to_owned());
                    }
                }
            }
        }
        self.json
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The `auths` entry's key for `domain`, if there is one.
    fn auths_key(&self, domain: &str) -> Option<String> {
        let want = normalize_key(&config_key(domain));
        match self.json.get("auths") {
            Some(Value::Object(a)) => a.keys().find(|k| normalize_key(k) == want).cloned(),
            _ => None,
        }
    }

    /// The credentials for `domain` (a reference's registry domain), if any are stored.
    pub fn credentials(&self, domain: &str) -> Result<Option<Credentials>> {
        if let Some(helper) = self.helper(domain) {
            return helper_get(&helper, &config_key(domain));
        }
        let Some(key) = self.auths_key(domain) else {
            return Ok(None);
        };
        let entry = &self.json["auths"][&key];
        let bad = |msg: &str| {
            RegistryError::Credentials(format!("{}: auths[{key:?}]: {msg}", self.path.display()))
        };
        if let Some(a) = entry.get("auth").and_then(Value::as_str) {
            if a.is_empty() {
                return Ok(None);
            }
            let (u, p) = decode_basic(a).map_err(bad)?;
            return Ok(Some(Credentials {
                username: u,
                secret: p,
            }));
        }
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) => Ok(Some(Credentials {
                username: u.to_owned(),
                secret: p.to_owned(),
            })),
            _ => Ok(None),
        }
    }

    /// Stores `creds` for `domain` (in its credential helper if it has one, else in
    /// `auths`) and writes the file.
    pub fn store(&mut self, domain: &str, creds: &Credentials) -> Result<()> {
        let key = config_key(domain);
        if let Some(helper) = self.helper(domain) {
            let input =
                json!({"ServerURL": key, "Username": creds.username, "Secret": creds.secret});
            run_helper(&helper, "store", input.to_string().as_bytes())?;
            // Docker leaves an empty entry in auths so that the registry is listed.
            self.auths_mut().insert(key, json!({}));
        } else {
            let raw = format!("{}:{}", creds.username, creds.secret);
            let auth = base64::engine::general_purpose::STANDARD.encode(raw);
            if let Some(old) = self.auths_key(domain) {
                self.auths_mut().remove(&old);
            }
            self.auths_mut().insert(key, json!({ "auth": auth }));
        }
        self.save()
    }

    /// Forgets `domain`'s credentials. `false`: there were none.
    pub fn erase(&mut self, domain: &str) -> Result<bool> {
        let key = config_key(domain);
        let mut found = false;
        if let Some(helper) = self.helper(domain) {
            found = run_helper(&helper, "erase", key.as_bytes()).is_ok();
        }
        if let Some(old) = self.auths_key(domain) {
            self.auths_mut().remove(&old);
            found = true;
        }
        if found {
            self.save()?;
        }
        Ok(found)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let e = self
            .json
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !e.is_object() {
            *e = Value::Object(Map::new());
        }
        match e {
            Value::Object(m) => m,
            _ => unreachable!("just made an object"),
        }
    }

    /// Writes the file atomically, readable only by its owner (it holds secrets).
    fn save(&self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| RegistryError::io(format!("create {}", dir.display()), e))?;
        let data = serde_json::to_vec_pretty(&Value::Object(self.json.clone()))
            .map_err(|e| RegistryError::Credentials(e.to_string()))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json.")
            .tempfile_in(dir)
            .map_err(|e| RegistryError::io(format!("create a file in {}", dir.display()), e))?;
        let ctx = || format!("write {}", self.path.display());
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| RegistryError::io(ctx(), e))?;
        tmp.write_all(&data)
            .and_then(|_| tmp.write_all(b"\n"))
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| RegistryError::io(ctx(), e))?;
        tmp.persist(&self.path)
            .map_err(|e| RegistryError::io(ctx(), e.error))?;
        Ok(())
    }
}

/// Runs `docker-credential-NAME ACTION` with `input` on stdin; returns its stdout.
fn run_helper(name: &str, action: &str, input: &[u8]) -> Result<Vec<u8>> {
    let prog = format!("docker-credential-{name}");
    let err = |msg: String| RegistryError::Credentials(format!("{prog} {action}: {msg}"));
    let mut child = Command::new(&prog)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).map_err(|e| err(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_owned()
            + String::from_utf8_lossy(&out.stderr).trim();
        return Err(err(if msg.is_empty() {
            out.status.to_string()
        } else {
            msg
        }));
    }
    Ok(out.stdout)
}

fn helper_get(name: &str, key: &str) -> Result<Option<Credentials>> {
    let out = match run_helper(name, "get", key.as_bytes()) {
        Ok(o) => o,
        Err(RegistryError::Credentials(m)) if m.contains("credentials not found") => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&out).map_err(|e| {
        RegistryError::Credentials(format!("docker-credential-{name} get: bad output: {e}"))
    })?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (username, secret) = (field("Username"), field("Secret"));
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials { username, secret }))
}

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header (`Bearer realm="…",service="…"` or `Basic realm="…"`).
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    } else {
        None
    }
}

/// `k1="v 1", k2=v2` → pairs (quoted strings may hold commas and `\"`).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == ',' || b[i].is_whitespace()) {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != '=' && b[i] != ',' {
            i += 1;
        }
        let key: String = b[start..i].iter().collect::<String>().trim().to_owned();
        if i >= b.len() || b[i] != '=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != ',' {
                val.push(b[i]);
                i += 1;
            }
            val = val.trim().to_owned();
        }
        if !key.is_empty() {
            out.push((key, val));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn auth_configs_as_clients_send_them() {
        let c = |v: Value| AuthConfig::from_json(&v).credentials();
        let u = c(json!({"username": "u", "password": "p"})).unwrap();
        assert_eq!((u.username.as_str(), u.secret.as_str()), ("u", "p"));
        assert_eq!(
            c(json!({"auth": "dTpw"})).map(|c| c.secret),
            Some("p".into())
        );
        let t = c(json!({"identitytoken": "tok"})).unwrap();
        assert_eq!((t.username.as_str(), t.secret.as_str()), ("<token>", "tok"));
        assert!(c(json!({})).is_none());
        assert!(c(json!({"username": 3, "auth": "!!"})).is_none());
        // The header: base64url, padded or not, or standard base64.
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"username":"u","password":"p?>","serveraddress":"r:5000"}"#);
        let a = AuthConfig::from_header(&h).unwrap();
        assert_eq!(
            (a.password.as_str(), a.server_address.as_str()),
            ("p?>", "r:5000")
        );
        let e = AuthConfig::from_header("%%%").unwrap_err().to_string();
        assert_eq!(e, "invalid X-Registry-Auth header: not base64");
        let e = AuthConfig::from_header("bm9wZQ").unwrap_err().to_string();
        assert!(e.starts_with("invalid X-Registry-Auth header: "), "{e}");
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=https://t/x"#),
            Some(Challenge::Bearer {
                realm: "https://t/x".into(),
                service: None,
                scope: None
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn config_auths_store_erase() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("sub/config.json");
        let mut c = DockerConfig::load(&p).unwrap();
        assert_eq!(c.credentials("localhost:5000").unwrap(), None);
        let cr = Credentials {
            username: "u".into(),
            secret: "p:w".into(),
        };
        c.store("localhost:5000", &cr).unwrap();
        c.store("docker.io", &cr).unwrap();
        let c = DockerConfig::load(&p).unwrap();
        assert_eq!(c.credentials("localhost:5000").unwrap(), Some(cr.clone()));
        assert_eq!(c.credentials("docker.io").unwrap(), Some(cr.clone()));
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["auths"][DOCKER_HUB_KEY]["auth"], "dTpwOnc=");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Keys written by other tools: with a scheme, with a path.
        std::fs::write(
            &p,
            r#"{"auths":{"https://reg.example:443/v1/":{"auth":"YTpi"},"other":{"username":"x","password":"y"}}}"#,
        )
        .unwrap();
        let mut c = DockerConfig::load(&p).unwrap();
        assert_eq!(
            c.credentials("reg.example:443").unwrap().unwrap().secret,
            "b"
        );
        assert_eq!(c.credentials("other").unwrap().unwrap().username, "x");
        assert!(c.erase("reg.example:443").unwrap());
        assert!(!c.erase("reg.example:443").unwrap());
        assert_eq!(
            DockerConfig::load(&p)
                .unwrap()
                .credentials("reg.example:443")
                .unwrap(),
            None
        );
        std::fs::write(&p, r#"{"auths":{"h":{"auth":"!!"}}}"#).unwrap();
        let e = DockerConfig::load(&p)
            .unwrap()
            .credentials("h")
            .unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        std::fs::write(&p, "[1]").unwrap();
        assert!(DockerConfig::load(&p).is_err());
    }

    #[test]
    fn credential_helper() {
        // A helper script that answers for one server and stores what it is given.
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("docker-credential-berthtest");
        let store = t.path().join("stored");
        std::fs::write(
            &bin,
            format!(
                "#!/bin/sh\ncase $1 in\nget) read s; if [ \"$s\" = reg.test:1 ]; then echo '{{\"ServerURL\":\"reg.test:1\",\"Username\":\"hu\",\"Secret\":\"hs\"}}'; else echo 'credentials not found in native keychain'; exit 1; fi;;\nstore) cat > {0};;\nerase) cat > {0}.erased;;\nesac\n",
                store.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = t.path().join("config.json");
        std::fs::write(&p, r#"{"credHelpers":{"reg.test:1":"berthtest"}}"#).unwrap();
        // PATH is process-wide: this test alone changes it, and only adds a directory.
        let path = std::env::var("PATH").unwrap_or_default();
        // SAFETY-free: set_var is safe in edition 2021.
        std::env::set_var("PATH", format!("{}:{path}", t.path().display()));
        let mut c = DockerConfig::load(&p).unwrap();
        let got = c.credentials("reg.test:1").unwrap().unwrap();
        assert_eq!((got.username.as_str(), got.secret.as_str()), ("hu", "hs"));
        // No helper for this one: auths (empty).
        assert_eq!(c.credentials("reg.test:2").unwrap(), None);
        c.store(
            "reg.test:1",
            &Credentials {
                username: "n".into(),
                secret: "s".into(),
            },
        )
        .unwrap();
        let stored: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
        assert_eq!(stored["Secret"], "s");
        assert!(c.erase("reg.test:1").unwrap());
        assert_eq!(
            std::fs::read_to_string(format!("{}.erased", store.display())).unwrap(),
            "reg.test:1"
        );
    }
}

//! The engine's errors. Each renders as the one line the user sees (Docker's
//! words); its variant says what happened, so a front end maps it without
//! reading the text: the CLI to an exit status (`exit_code`), an API server
//! to Docker's HTTP status (`http_status`, as moby's `errdefs` map them).

/// The kind of object a `NotFound` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Object {
    Container,
    Image,
    Network,
    Volume,
    /// An exec instance.
    Exec,
    /// A path inside a container (`cp`, the archive endpoints).
    Path,
    /// A published port of a container (`port`).
    Port,
    /// A name that is none of the objects `inspect` tries in turn.
    Any,
}

impl Object {
    /// Docker's word for the object in "No such …: NAME".
    pub fn docker_word(self) -> &'static str {
        match self {
            Object::Container => "container",
            Object::Image => "image",
            Object::Network => "network",
            Object::Volume => "volume",
            Object::Exec => "exec instance",
            Object::Path => "file",
            Object::Port => "port",
            Object::Any => "object",
        }
    }
}

/// Why a request conflicts with the state of things (Docker's 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConflictKind {
    /// The name (of a container, network, volume) is taken.
    NameInUse,
    /// The container runs (`rm` without force, an image of a running container).
    Running,
    /// The container does not run (kill, pause, attach, exec, update, a
    /// network or link to it).
    NotRunning,
    /// The container is paused (exec).
    Paused,
    /// The object is used by others: a volume by containers, an image by
    /// containers or child images, a network by endpoints.
    InUse,
    /// Another process is removing it already.
    InProgress,
    /// Anything else: an address or a port already taken.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad input (Docker's InvalidParameter: 400).
    #[error("{0}")]
    Invalid(String),
    /// No such object (404).
    #[error("{message}")]
    NotFound { object: Object, message: String },
    /// The request conflicts with the state of things (409).
    #[error("{message}")]
    Conflict { kind: ConflictKind, message: String },
    /// Nothing to do: start of a running container, stop of a stopped one
    /// (304). The CLI treats it as success.
    #[error("{0}")]
    NotModified(String),
    /// Refused whatever the state (a predefined network's removal: 403).
    #[error("{0}")]
    Forbidden(String),
    /// The registry refused the credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// berth does not implement it (Docker's NotImplemented: 501).
    #[error("{0}")]
    Unsupported(String),
    /// A service berth does not run, swarm's (Docker's Unavailable: 503).
    #[error("{0}")]
    Unavailable(String),
    /// An internal failure of a file operation (500).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The container's program does not exist (exit 127; Docker's start
    /// answers 400, an invalid config).
    #[error("{0}")]
    CommandNotFound(String),
    /// The container's program cannot be executed (exit 126; 400).
    #[error("{0}")]
    CannotExecute(String),
    /// Any other internal failure (500).
    #[error("{0}")]
    Other(String),
}

impl EngineError {
    /// `NotFound` about `object`, in the words given.
    pub fn not_found(object: Object, message: impl Into<String>) -> EngineError {
        EngineError::NotFound {
            object,
            message: message.into(),
        }
    }

    /// Docker's "No such container: NAME" (image, network, volume, exec
    /// instance, object).
    pub fn no_such(object: Object, name: &str) -> EngineError {
        EngineError::not_found(object, format!("No such {}: {name}", object.docker_word()))
    }

    /// A `Conflict` of `kind`, in the words given.
    pub fn conflict(kind: ConflictKind, message: impl Into<String>) -> EngineError {
        EngineError::Conflict {
            kind,
            message: message.into(),
        }
    }

    /// Whether this is a `NotFound` about `object`.
    pub fn is_not_found(&self, object: Object) -> bool {
        matches!(self, EngineError::NotFound { object: o, .. } if *o == object)
    }

    /// The status `docker run` (and `create`) exits with on this error:
    /// 127 when the container's program does not exist, 126 when it cannot
    /// be executed, 125 for every other failure. The other commands of the
    /// CLI exit 1 on any error, as Docker's do; `NotModified` is no failure
    /// for the CLI (start/stop print the name and exit 0).
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::CommandNotFound(_) => 127,
            EngineError::CannotExecute(_) => 126,
            _ => 125,
        }
    }

    /// Docker's HTTP status for this error (moby's `errdefs` mapping).
    pub fn http_status(&self) -> u16 {
        match self {
            EngineError::Invalid(_)
            | EngineError::CommandNotFound(_)
            | EngineError::CannotExecute(_) => 400,
            EngineError::Unauthorized(_) => 401,
            EngineError::Forbidden(_) => 403,
            EngineError::NotFound { .. } => 404,
            EngineError::Conflict { .. } => 409,
            EngineError::NotModified(_) => 304,
            EngineError::Unsupported(_) => 501,
            EngineError::Unavailable(_) => 503,
            EngineError::Io { .. } | EngineError::Other(_) => 500,
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| EngineError::Io {
            context: what(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<(EngineError, i32, u16)> {
        vec![
            (EngineError::Invalid("x".into()), 125, 400),
            (EngineError::no_such(Object::Container, "c"), 125, 404),
            (
                EngineError::conflict(ConflictKind::NameInUse, "x"),
                125,
                409,
            ),
            (
                EngineError::NotModified("Container is already started".into()),
                125,
                304,
            ),
            (EngineError::Forbidden("x".into()), 125, 403),
            (EngineError::Unauthorized("x".into()), 125, 401),
            (EngineError::Unsupported("x".into()), 125, 501),
            (EngineError::Unavailable("x".into()), 125, 503),
            (
                EngineError::Io {
                    context: "read x".into(),
                    source: std::io::Error::from_raw_os_error(5),
                },
                125,
                500,
            ),
            (EngineError::CommandNotFound("x".into()), 127, 400),
            (EngineError::CannotExecute("x".into()), 126, 400),
            (EngineError::Other("x".into()), 125, 500),
        ]
    }

    #[test]
    fn exit_code_and_http_status_per_variant() {
        for (e, code, status) in all() {
            assert_eq!(e.exit_code(), code, "{e:?}");
            assert_eq!(e.http_status(), status, "{e:?}");
        }
    }

    #[test]
    fn no_such_uses_dockers_words() {
        let cases = [
            (Object::Container, "No such container: web"),
            (Object::Image, "No such image: web"),
            (Object::Network, "No such network: web"),
            (Object::Volume, "No such volume: web"),
            (Object::Exec, "No such exec instance: web"),
            (Object::Any, "No such object: web"),
        ];
        for (o, want) in cases {
            let e = EngineError::no_such(o, "web");
            assert_eq!(e.to_string(), want);
            assert!(e.is_not_found(o));
            assert_eq!(e.http_status(), 404);
        }
        assert!(!EngineError::no_such(Object::Image, "x").is_not_found(Object::Container));
    }

    #[test]
    fn image_errors_map_by_variant() {
        let e: EngineError = berth_image::Error::NoSuchImage("busybox:latest".into()).into();
        assert!(e.is_not_found(Object::Image));
        assert_eq!(e.to_string(), "No such image: busybox:latest");
        assert_eq!(e.http_status(), 404);
        let e: EngineError = berth_image::Error::AmbiguousImage {
            prefix: "ab".into(),
            count: 2,
        }
        .into();
        assert_eq!(e.http_status(), 400);
        let e: EngineError = berth_image::Error::Conflict(
            "unable to delete 0123 (cannot be forced) - image is being used by running container c"
                .into(),
        )
        .into();
        assert!(matches!(
            e,
            EngineError::Conflict {
                kind: ConflictKind::Running,
                ..
            }
        ));
        assert_eq!(e.http_status(), 409);
        let e: EngineError = berth_image::Error::Archive("bad tar".into()).into();
        assert_eq!(e.http_status(), 500);
    }

    #[test]
    fn storage_errors_map_by_variant() {
        let e: EngineError = berth_storage::Error::NoSuchPath {
            name: "web".into(),
            path: "/nope".into(),
        }
        .into();
        assert!(e.is_not_found(Object::Path));
        assert_eq!(
            e.to_string(),
            "Could not find the file /nope in container web"
        );
        let e: EngineError = berth_storage::Error::UnknownDriver("zfs".into()).into();
        assert_eq!(e.http_status(), 400);
    }

    #[test]
    fn messages_are_the_words_given() {
        let e = EngineError::conflict(
            ConflictKind::Running,
            "You cannot remove a running container",
        );
        assert_eq!(e.to_string(), "You cannot remove a running container");
        assert!(matches!(
            e,
            EngineError::Conflict {
                kind: ConflictKind::Running,
                ..
            }
        ));
    }
}
